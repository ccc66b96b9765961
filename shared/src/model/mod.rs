//! The domain records and how each is laid out as items (DESIGN §3, §5).
//!
//! Key layout (one table, one GSI):
//!
//! | record     | pk                  | sk            | gsi1pk                | gsi1sk  |
//! |------------|---------------------|---------------|-----------------------|---------|
//! | workspace  | `WS#{ws}`           | `WS`          |                       |         |
//! | admin key  | `ADMINKEY#{sha256}` | `KEY`         | `WS#{ws}#ADMINKEYS`   | key id  |
//! | agent      | `AGENT#{agent}`     | `AGENT`       | `WS#{ws}#AGENTS`      | agent id|
//! | run        | `RUN#{run}`         | `RUN`         | `AGENT#{agent}#RUNS`  | run id  |
//! | log line   | `LOGS#{agent}`      | `{run}#{seq}` |                       |         |
//! | subscription | `SUB#{sub}`       | `SUB`         | `WS#{ws}#SUBS`        | sub id  |
//! | delivery   | `DLV#{dlv}`         | `DLV`         | `SUB#{sub}#DLVS`      | dlv id  |
//! | attempt    | `DLV#{dlv}`         | `ATT#{n}`     |                       |         |
//! | trigger    | `TRG#{trg}`         | `TRG`         | `WS#{ws}#TRIGGERS`    | trg id  |
//! | token      | `TOKEN#{sha256}`    | `TOKEN`       | (copy of the trigger) |         |
//! | agent route| `AGENTROUTE#{agent}`| `ROUTE`       |                       |         |
//! | invocation | `INVOC#{trg}`       | inv id        |                       |         |
//! | dedup key  | `DEDUP#{target}#{sha256}` | `DEDUP` |                       |         |
//! | rate count | `RL#{scope}#{id}#{minute}` | `RL`   |                       |         |
//! | bootstrap  | `META`              | `BOOTSTRAP`   |                       |         |
//!
//! Ids are ULID-based, so a reverse query on a GSI lists newest first.

pub mod admin;
pub mod agent;
pub mod delivery;
pub mod logs;
pub mod run;
pub mod subscription;
pub mod trigger;
pub mod workspace;

pub use admin::AdminKey;
pub use agent::{Agent, RunnerConfig};
pub use delivery::{Delivery, DeliveryAttempt, DeliveryStatus};
pub use logs::LogLine;
pub use run::{Run, RunStatus, TriggerType};
pub use subscription::Subscription;
pub use trigger::{AllowedSources, Invocation, SignatureConfig, Trigger};
pub use workspace::Workspace;

use serde::{de::DeserializeOwned, Serialize};

use crate::error::{StoreError, StoreResult};
use crate::ports::Item;

pub(crate) fn to_doc<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("domain records serialise")
}

pub(crate) fn from_item<T: DeserializeOwned>(item: &Item) -> StoreResult<T> {
    serde_json::from_value(item.data.clone()).map_err(StoreError::from)
}

/// One page of a query, as records, with the cursor to the next page.
pub(crate) async fn page_of<T: DeserializeOwned>(
    app: &crate::app::App,
    query: crate::ports::Query,
) -> StoreResult<(Vec<T>, Option<String>)> {
    let page = app.items.query(query).await?;
    let records = page
        .items
        .iter()
        .map(from_item)
        .collect::<StoreResult<Vec<T>>>()?;
    Ok((records, page.next_cursor))
}

/// A record by its id, with its item version: `None` for ids that cannot
/// be ours (checked before they shape a key) and for missing items.
pub(crate) async fn load<T: DeserializeOwned>(
    app: &crate::app::App,
    id: &str,
    key: fn(&str) -> (String, String),
) -> StoreResult<Option<(T, u64)>> {
    if !crate::ids::is_plausible_id(id) {
        return Ok(None);
    }
    let (pk, sk) = key(id);
    match app.items.get(&pk, &sk).await? {
        Some(item) => Ok(Some((from_item(&item)?, item.version))),
        None => Ok(None),
    }
}
