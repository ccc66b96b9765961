//! The use cases, written against the ports only.

pub mod admin;
pub mod agents;
pub mod delivery;
pub mod events;
pub mod executor;
pub mod ingress;
pub mod ratelimit;
pub mod runs;
pub mod subscriptions;
pub mod triggers;
