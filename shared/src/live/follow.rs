//! Following a subscription: what the client missed (read back from the
//! store), then live events, each exactly once and in its run's order.
//! The WebSocket channel and the SSE routes both follow through this.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;

use super::{replay, Filter, LiveEvent};
use crate::app::App;
use crate::error::Error;
use crate::ids::RunId;

/// Why a follow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Ended {
    /// The subscriber fell further behind than its buffer
    /// ([`super::hub::SUBSCRIBER_BUFFER`] events): it reconnects with the
    /// last id it saw.
    #[error("the subscriber fell too far behind; reconnect with the last event id it saw")]
    Lagged,
    /// The hub closed (the server is stopping).
    #[error("the server is stopping")]
    Closed,
}

/// Runs whose last number a follower remembers before it starts afresh
/// (numbers matter only to drop what the replay already gave).
const MAX_REMEMBERED: usize = 10_000;

pub struct Follower {
    filter: Filter,
    rx: tokio::sync::broadcast::Receiver<Arc<LiveEvent>>,
    backlog: VecDeque<LiveEvent>,
    /// The last number given per run.
    given: HashMap<RunId, u32>,
}

impl Follower {
    /// Subscribes first, then reads back what the client missed since
    /// `last` (see [`replay::since`]), so nothing published in between is
    /// lost; what both give is given once.
    pub async fn start(
        app: &App,
        filter: Filter,
        last: Option<(RunId, u32)>,
    ) -> Result<Self, Error> {
        let rx = app.live.subscribe();
        let backlog = replay::since(app, &filter, last.clone()).await?;
        let mut given = HashMap::new();
        if let Some((run, seq)) = last {
            given.insert(run, seq);
        }
        Ok(Follower {
            filter,
            rx,
            backlog: backlog.into(),
            given,
        })
    }

    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// The next event (waits for a live one once the backlog is given).
    pub async fn next(&mut self) -> Result<LiveEvent, Ended> {
        if let Some(e) = self.backlog.pop_front() {
            self.note(&e);
            return Ok(e);
        }
        loop {
            let e = match self.rx.recv().await {
                Ok(e) => e,
                Err(RecvError::Lagged(_)) => return Err(Ended::Lagged),
                Err(RecvError::Closed) => return Err(Ended::Closed),
            };
            if !self.filter.matches(&e) {
                continue;
            }
            if self.given.get(&e.run_id).is_some_and(|seq| e.seq <= *seq) {
                continue;
            }
            let e = LiveEvent::clone(&e);
            self.note(&e);
            return Ok(e);
        }
    }

    fn note(&mut self, e: &LiveEvent) {
        if self.given.len() >= MAX_REMEMBERED && !self.given.contains_key(&e.run_id) {
            self.given.clear();
        }
        let seq = self.given.entry(e.run_id.clone()).or_insert(e.seq);
        *seq = (*seq).max(e.seq);
    }
}
