//! End-to-end tests: the real `chronicle` binary, real plugin libraries, real payloads.
//! One test binary (see STYLE.md); each module covers one capability.

mod adversarial;
mod authoring;
mod boundary;
mod claude_code;
mod cli;
mod concurrency;
mod containment;
mod corpus;
mod exactly_once;
mod gate;
mod guards;
mod merge;
mod packaging;
mod plugin_faults;
mod report;
mod resident;
mod store;
mod team;
mod wiring;
