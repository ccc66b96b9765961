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
    /// What the client missed could not be read back from the store.
    #[error("what was missed could not be read back; reconnect with the last event id it saw")]
    Unavailable,
}

/// Runs whose last number a follower remembers before it starts afresh
/// (numbers matter only to drop what the replay already gave).
const MAX_REMEMBERED: usize = 10_000;

/// A replay page being read: gives the replay back with the page.
type PageRead = std::pin::Pin<
    Box<dyn std::future::Future<Output = (replay::Replay, Result<Vec<LiveEvent>, Error>)> + Send>,
>;

/// Where a follower's replay is.
enum Replaying {
    /// Between pages.
    Idle(replay::Replay),
    /// A page being read (it gives the replay back with the page).
    Reading(PageRead),
    /// Given in full (or given up).
    Over,
}

pub struct Follower {
    app: App,
    filter: Filter,
    rx: tokio::sync::broadcast::Receiver<Arc<LiveEvent>>,
    /// What is left of the replay (read a page at a time, each page
    /// given before the next is read).
    replay: Replaying,
    /// The page being given.
    backlog: VecDeque<LiveEvent>,
    /// The last number given per run.
    given: HashMap<RunId, u32>,
}

impl Follower {
    /// Subscribes first, then reads back what the client missed since
    /// `last` (see [`replay::Replay`]), so nothing published in between is
    /// lost; what both give is given once.
    pub async fn start(
        app: &App,
        filter: Filter,
        last: Option<(RunId, u32)>,
    ) -> Result<Self, Error> {
        let rx = app.live.subscribe();
        let replay = replay::Replay::start(app, &filter, last.clone()).await?;
        let mut given = HashMap::new();
        if let Some((run, seq)) = last {
            given.insert(run, seq);
        }
        Ok(Follower {
            app: app.clone(),
            filter,
            rx,
            replay: Replaying::Idle(replay),
            backlog: VecDeque::new(),
            given,
        })
    }

    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// The next event (waits for a live one once the backlog is given).
    pub async fn next(&mut self) -> Result<LiveEvent, Ended> {
        loop {
            if let Some(e) = self.backlog.pop_front() {
                self.note(&e);
                return Ok(e);
            }
            let reading = match std::mem::replace(&mut self.replay, Replaying::Over) {
                Replaying::Over => break,
                Replaying::Reading(reading) => reading,
                Replaying::Idle(mut replay) => {
                    let app = self.app.clone();
                    Box::pin(async move {
                        let page = replay.next_page(&app).await;
                        (replay, page)
                    })
                }
            };
            // Kept while it is read: `next` is awaited in `select!`s that
            // may drop it, and the page must not be lost with it.
            self.replay = Replaying::Reading(reading);
            let Replaying::Reading(reading) = &mut self.replay else {
                unreachable!("just set")
            };
            let (replay, page) = reading.as_mut().await;
            self.replay = Replaying::Over;
            match page {
                Ok(page) if page.is_empty() => {}
                Ok(page) => {
                    self.backlog = page.into();
                    self.replay = Replaying::Idle(replay);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a replay could not be read");
                    return Err(Ended::Unavailable);
                }
            }
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
