//! Background push.
