//! The use cases, written against the ports only.

pub mod admin;
pub mod agents;
pub mod executor;
pub mod ingress;
pub mod runs;
