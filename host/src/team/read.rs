//! Team views (filled in below).
