//! The use cases, written against the repository and the ports only; they
//! return `crate::error::Error` and know nothing of HTTP or Lambda.

pub mod admin;
pub mod agents;
pub mod concurrency;
pub mod control;
pub mod delivery;
pub mod events;
pub mod executor;
pub mod ingress;
pub mod listen;
pub mod ratelimit;
pub mod replay;
pub mod runs;
pub mod schedules;
pub mod sealing;
pub mod subscriptions;
pub mod triggers;
pub mod usage;
