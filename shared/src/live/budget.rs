//! How many event streams (SSE, WebSocket) may be open at once: in all,
//! per workspace and per admin key (docs/ARCHITECTURE.md, "Hostile
//! traffic"). A stream holds a [`StreamSlot`] for as long as it is open;
//! the count is this process's (`hookrun serve`; on AWS, API Gateway
//! holds the WebSockets and an SSE answer is not long-lived).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::StreamLimits;
use crate::error::Error;
use crate::ids::WorkspaceId;

pub struct StreamBudget {
    limits: StreamLimits,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    per_workspace: HashMap<WorkspaceId, usize>,
    per_key: HashMap<String, usize>,
}

/// One open stream's place in the budget, given back when dropped.
pub struct StreamSlot {
    budget: Arc<StreamBudget>,
    /// The workspace and key it counts for, once authenticated.
    owner: Option<(WorkspaceId, String)>,
}

impl StreamBudget {
    pub fn new(limits: StreamLimits) -> Self {
        StreamBudget {
            limits,
            open: Mutex::new(Open::default()),
        }
    }

    fn open(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot counted in all only: a WebSocket before it authenticated.
    pub fn take_anonymous(self: &Arc<Self>) -> Result<StreamSlot, Error> {
        let mut open = self.open();
        if open.total >= self.limits.total {
            return Err(over("in all", self.limits.total));
        }
        open.total += 1;
        Ok(StreamSlot {
            budget: self.clone(),
            owner: None,
        })
    }

    /// A slot for a stream of `workspace` opened with admin key `key_id`.
    pub fn take(
        self: &Arc<Self>,
        workspace: &WorkspaceId,
        key_id: &str,
    ) -> Result<StreamSlot, Error> {
        let mut slot = self.take_anonymous()?;
        self.claim(&mut slot, workspace, key_id)?;
        Ok(slot)
    }

    /// Counts an anonymous slot for `workspace` and `key_id` too (a
    /// WebSocket that just authenticated); refused, it stays anonymous.
    pub fn claim(
        &self,
        slot: &mut StreamSlot,
        workspace: &WorkspaceId,
        key_id: &str,
    ) -> Result<(), Error> {
        if slot.owner.is_some() {
            return Ok(());
        }
        let mut open = self.open();
        let of_workspace = open.per_workspace.get(workspace).copied().unwrap_or(0);
        if of_workspace >= self.limits.per_workspace {
            return Err(over("for this workspace", self.limits.per_workspace));
        }
        let of_key = open.per_key.get(key_id).copied().unwrap_or(0);
        if of_key >= self.limits.per_key {
            return Err(over("for this admin key", self.limits.per_key));
        }
        *open.per_workspace.entry(workspace.clone()).or_insert(0) += 1;
        *open.per_key.entry(key_id.to_owned()).or_insert(0) += 1;
        slot.owner = Some((workspace.clone(), key_id.to_owned()));
        Ok(())
    }

    /// Streams open now (in all).
    pub fn total(&self) -> usize {
        self.open().total
    }
}

fn over(scope: &'static str, limit: usize) -> Error {
    Error::TooManyStreams { scope, limit }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.budget.open();
        open.total = open.total.saturating_sub(1);
        if let Some((workspace, key)) = self.owner.take() {
            if let Some(n) = open.per_workspace.get_mut(&workspace) {
                *n -= 1;
                if *n == 0 {
                    open.per_workspace.remove(&workspace);
                }
            }
            if let Some(n) = open.per_key.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    open.per_key.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cap_holds_and_slots_come_back() {
        let budget = Arc::new(StreamBudget::new(StreamLimits {
            total: 4,
            per_workspace: 3,
            per_key: 2,
            send_timeout: std::time::Duration::from_secs(10),
        }));
        let a = WorkspaceId::parse("ws_a").unwrap();
        let b = WorkspaceId::parse("ws_b").unwrap();
        let k1 = budget.take(&a, "key_1").unwrap();
        let _k1b = budget.take(&a, "key_1").unwrap();
        assert!(matches!(
            budget.take(&a, "key_1"),
            Err(Error::TooManyStreams { limit: 2, .. })
        ));
        let _k2 = budget.take(&a, "key_2").unwrap();
        assert!(matches!(
            budget.take(&a, "key_3"),
            Err(Error::TooManyStreams { limit: 3, .. })
        ));
        let mut anonymous = budget.take_anonymous().unwrap();
        assert!(matches!(
            budget.take_anonymous(),
            Err(Error::TooManyStreams { limit: 4, .. })
        ));
        // Workspace a is full: the anonymous one cannot claim it; b can.
        assert!(budget.claim(&mut anonymous, &a, "key_3").is_err());
        budget.claim(&mut anonymous, &b, "key_9").unwrap();
        drop(k1);
        assert_eq!(budget.total(), 3);
        let _again = budget.take(&a, "key_1").unwrap();
        drop(anonymous);
        assert_eq!(budget.total(), 3);
        assert!(
            !budget.open().per_workspace.contains_key(&b),
            "emptied entries go"
        );
    }
}
