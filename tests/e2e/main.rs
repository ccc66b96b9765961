//! End-to-end suites: each test starts the real `hookrun serve` binary on a
//! free port with a temporary data directory and drives it over HTTP like a
//! real client would, with a fake http agent beside it.

mod harness;

mod abuse;
mod admin_keys;
mod agent_webhook;
mod cli;
mod control;
mod execution;
mod limits;
mod live;
mod local_loop;
mod management;
mod outgoing;
mod restart;
mod runners;
mod schedules;
mod triggers;
