//! Real-time run events (docs/ARCHITECTURE.md, "Real-time events"): one
//! event format for every transport (the WebSocket channel
//! `workspace:{workspaceId}`, server-sent events, the API Gateway
//! WebSocket API on AWS), published by whoever writes what they announce
//! (ingress: `run.queued`; the executor: `run.started`, every log line,
//! the terminal event), always after it is stored, so that what a client
//! missed can be read back from the store ([`replay`]).

pub mod budget;
pub mod cancels;
mod event;
mod follow;
mod hub;
pub mod protocol;
pub mod replay;

pub use budget::{StreamBudget, StreamSlot};
pub use event::{
    event_id, parse_event_id, EventData, EventKind, Filter, LiveEvent, LogData, RunSummary,
};
pub use follow::{Ended, Follower};
pub use hub::{Fanout, Hub, ListenPush, SUBSCRIBER_BUFFER};
