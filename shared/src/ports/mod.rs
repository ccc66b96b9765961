//! The ports through which the domain talks to the world (docs/ARCHITECTURE.md, "Layers").
//!
//! Each port is a small object-safe trait with one adapter per backend: the
//! embedded SQLite adapters in [`crate::sqlite`] and the AWS adapters. Every
//! port has a contract suite in [`crate::contract`] that each adapter must pass.

pub mod fires;
pub mod items;
pub mod queue;
pub mod secrets;

pub use fires::{FireSource, FireSpec, InProcess};
pub use items::{Condition, Index, Item, ItemTable, OutboxMessage, Page, Query, TxOp};
pub use queue::{Queue, QueueId, QueueMessage, MAX_DELAY as MAX_DELAY_FOR_QUEUE};
pub use secrets::{SecretStore, SecretVersions};
