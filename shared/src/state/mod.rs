//! Process-local state the services keep between calls, held by [`App`]
//! (which is built from it) and used by the services (which receive the
//! `App`): below both, so neither imports the other for it.
//!
//! [`App`]: crate::app::App

pub mod limiter;
pub mod targets;
