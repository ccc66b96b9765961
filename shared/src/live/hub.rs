//! Where events go once they are stored: this process's subscribers (the
//! WebSocket and SSE clients of `hookrun serve`) and, on AWS, a fan-out to
//! the API Gateway WebSocket connections of the workspace.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::{broadcast, Notify};

use super::LiveEvent;
use crate::ids::WorkspaceId;

/// Events one subscriber may fall behind by before it is dropped (it
/// reconnects with the last id it saw and reads the rest back).
pub const SUBSCRIBER_BUFFER: usize = 1024;

/// Sends events to subscribers outside this process (API Gateway
/// WebSocket connections). Best effort: a failure is logged, never
/// reported to the run.
#[async_trait::async_trait]
pub trait Fanout: Send + Sync {
    async fn send(&self, events: &[LiveEvent]);
    /// A listen session's delivery, to the connections listening to it.
    async fn listen(&self, push: &ListenPush);
}

/// A `hookrun listen` session's delivery, as the channel carries it to
/// the connections listening to that session (`services::listen`).
#[derive(Debug, Clone)]
pub struct ListenPush {
    pub workspace_id: WorkspaceId,
    pub session_id: String,
    /// The channel's `delivery` message, ready to send.
    pub text: String,
}

/// The process's event hub. Publishing never waits for a subscriber: each
/// has its own bounded view of the broadcast, and one that falls behind
/// loses its place (and its connection), never slows a run.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Arc<LiveEvent>>,
    listen_tx: broadcast::Sender<Arc<ListenPush>>,
    /// Whether this process streams to its own clients (`hookrun serve`):
    /// only then do the SSE routes keep a stream open for live events.
    local: bool,
    fanout: Option<Arc<dyn Fanout>>,
    closing: Arc<(AtomicBool, Notify)>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            tx: broadcast::channel(SUBSCRIBER_BUFFER).0,
            listen_tx: broadcast::channel(SUBSCRIBER_BUFFER).0,
            local: false,
            fanout: None,
            closing: Arc::default(),
        }
    }
}

impl Hub {
    /// A hub whose process serves live streams itself.
    pub fn local() -> Self {
        Hub {
            local: true,
            ..Hub::default()
        }
    }

    pub fn with_fanout(mut self, fanout: Arc<dyn Fanout>) -> Self {
        self.fanout = Some(fanout);
        self
    }

    pub fn is_local(&self) -> bool {
        self.local
    }

    /// Publishes stored events, in order.
    pub async fn publish(&self, events: Vec<LiveEvent>) {
        if events.is_empty() {
            return;
        }
        if let Some(fanout) = &self.fanout {
            fanout.send(&events).await;
        }
        if self.tx.receiver_count() > 0 {
            for e in events {
                // No receiver left between the check and the send: fine.
                let _ = self.tx.send(Arc::new(e));
            }
        }
    }

    /// Pushes a listen session's delivery to whoever listens to it. Like
    /// events, best effort: a session with nobody listening now gets it
    /// when its client next says `listen` (it stays due until reported).
    pub async fn push_listen(&self, push: ListenPush) {
        if let Some(fanout) = &self.fanout {
            fanout.listen(&push).await;
        }
        if self.listen_tx.receiver_count() > 0 {
            let _ = self.listen_tx.send(Arc::new(push));
        }
    }

    /// Every listen delivery pushed from now on (filter them yourself).
    pub fn subscribe_listen(&self) -> broadcast::Receiver<Arc<ListenPush>> {
        self.listen_tx.subscribe()
    }

    /// Every event published from now on (filter them yourself).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.tx.subscribe()
    }

    /// Asks every open stream to end (the server is stopping).
    pub fn close(&self) {
        self.closing.0.store(true, Ordering::SeqCst);
        self.closing.1.notify_waiters();
    }

    /// Resolves once [`Hub::close`] was called.
    pub async fn closed(&self) {
        loop {
            let notified = self.closing.1.notified();
            if self.closing.0.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}
