//! The domain records and how each is laid out as items
//! (docs/ARCHITECTURE.md, "Item layout"). Every storage key format is
//! written here and nowhere else.
//!
//! Key layout (one table, two GSIs; only runs are in the second, `gsi2`:
//! `WS#{ws}#RUNS` / run id, so a workspace's runs list newest first):
//!
//! | record       | pk                          | sk              | gsi1pk               | gsi1sk   |
//! |--------------|-----------------------------|-----------------|----------------------|----------|
//! | workspace    | `WS#{ws}`                   | `WS`            |                      |          |
//! | admin key    | `ADMINKEY#{sha256}`         | `KEY`           | `WS#{ws}#ADMINKEYS`  | key id   |
//! | agent        | `AGENT#{agent}`             | `AGENT`         | `WS#{ws}#AGENTS`     | agent id |
//! | run          | `RUN#{run}`                 | `RUN`           | `AGENT#{agent}#RUNS` | run id   |
//! | log line     | `LOGS#{agent}`              | `{run}#{seq:08}`|                      |          |
//! | subscription | `SUB#{sub}`                 | `SUB`           | `WS#{ws}#SUBS`       | sub id   |
//! | delivery     | `DLV#{dlv}`                 | `DLV`           | `SUB#{sub}#DLVS`     | `{created}#{dlv}` |
//! | attempt      | `DLV#{dlv}`                 | `ATT#{n:04}`    |                      |          |
//! | trigger      | `TRG#{trg}`                 | `TRG`           | `WS#{ws}#TRIGGERS`   | trg id   |
//! | token        | `TOKEN#{sha256}`            | `TOKEN`         | (copy of the trigger)|          |
//! | agent route  | `AGENTROUTE#{agent}`        | `ROUTE`         |                      |          |
//! | last use     | `TRGUSED#{trg}`             | `USED`          |                      |          |
//! | key last use | `KEYUSED#{key id}`          | `USED`          |                      |          |
//! | invocation   | `INVOC#{trg}`               | inv id          |                      |          |
//! | dedup key    | `DEDUP#{target}#{sha256}`   | `DEDUP`         |                      |          |
//! | rate count   | `RL#{scope}#{id}#{minute}`  | `RL`            |                      |          |
//! | slot (lease) | `WSSLOTS#{ws}`              | `{n:04}`        |                      |          |
//! | agent slot   | `WSSLOTS#{ws}#AGENT#{agent}`| `{n:04}`        |                      |          |
//! | key slot     | `WSSLOTS#{ws}#AGENT#{agent}#KEY#{digest}` | `0000` |               |          |
//! | slot waiter  | (a pool's partition)`#WAIT` | run id          |                      |          |
//! | schedule     | `SCHED#{sch}`               | `SCHED`         | `WS#{ws}#SCHEDULES`  | sch id   |
//! | key hold     | `KEYHOLD#{ws}#{agent}#{digest}` | `HOLD`      |                      |          |
//! | bootstrap    | `META`                      | `BOOTSTRAP`     |                      |          |
//! | relay position | `META`                    | `RELAY#{shard}` |                      |          |
//!
//! Ids are ULID-based, so a reverse query on a GSI lists newest first.

pub mod admin;
pub mod agent;
pub mod concurrency;
pub mod connection;
pub mod delivery;
pub mod environment;
pub mod keys;
pub mod listing;
pub mod logs;
pub mod run;
pub mod runner;
pub mod schedule;
pub mod slot;
pub mod subscription;
pub mod trigger;
pub mod workspace;

pub use admin::{AdminKey, Role};
pub use agent::{Agent, RunnerConfig};
pub use concurrency::{Concurrency, KeyHold, OnConflict};
pub use connection::Connection;
pub use delivery::{Delivery, DeliveryAttempt, DeliveryStatus};
pub use environment::Environment;
pub use logs::LogLine;
pub use run::{Run, RunControl, RunStatus, TriggerType};
pub use schedule::Schedule;
pub use slot::{Pool, Slot};
pub use subscription::Subscription;
pub use trigger::{
    AllowedSources, Invocation, InvocationResult, RejectionTally, RespondWhen, SignatureConfig,
    SignatureScheme, Trigger,
};
pub use workspace::Workspace;

use serde::{de::DeserializeOwned, Serialize};

use crate::error::{Entity, StoreError, StoreResult};
use crate::ids::WorkspaceId;
use crate::ports::Item;

/// A storage key: partition and sort key.
pub type Key = (String, String);

/// A record stored as one item under a key derived from its id. The
/// repository (`crate::repo`) loads, creates, saves and deletes any
/// `Record` the same way.
pub trait Record: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// What a "not found" for this record names.
    const ENTITY: Entity;
    /// The key of the record with this id.
    fn key_for(id: &str) -> Key;
    /// The record's id (what [`Record::key_for`] takes).
    fn id(&self) -> &str;
    /// Its keys in the first GSI, if it is listed there.
    fn gsi1(&self) -> Option<Key> {
        None
    }
    /// Its keys in the second GSI, if it is listed there too.
    fn gsi2(&self) -> Option<Key> {
        None
    }
    /// Its TTL (Unix seconds), if it expires.
    fn expires_at(&self) -> Option<i64> {
        None
    }
    /// The item this record is stored as, at `version`.
    fn to_item(&self, version: u64) -> Item {
        let (pk, sk) = Self::key_for(self.id());
        Item {
            pk,
            sk,
            gsi1: self.gsi1(),
            gsi2: self.gsi2(),
            expires_at: self.expires_at(),
            version,
            data: self.to_doc(),
        }
    }
    /// The document stored for it (a record may store less than it shows,
    /// when the rest can be rebuilt on reading: see [`from_item`]).
    fn to_doc(&self) -> serde_json::Value {
        to_doc(self)
    }
    /// Called before a save writes `version`: records that carry their own
    /// version (agents) keep it in step with the item's.
    fn set_version(&mut self, _version: u64) {}
}

/// A record that belongs to one workspace: loading it within another
/// workspace finds nothing.
pub trait Scoped: Record {
    fn workspace_id(&self) -> &WorkspaceId;
}

pub(crate) fn to_doc<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("domain records serialise")
}

/// A stored record, with what its document left out to be rebuilt (a
/// run's message, when it is the one its input makes).
pub(crate) fn from_item<T: DeserializeOwned>(item: &Item) -> StoreResult<T> {
    let mut data = item.data.clone();
    if item.pk.starts_with(run::PK_PREFIX) {
        run::expand_doc(&mut data);
    }
    serde_json::from_value(data).map_err(StoreError::from)
}
