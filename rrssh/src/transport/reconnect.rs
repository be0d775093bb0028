//! A dialing side that stays connected: reconnects after any failure with exponential backoff
//! and full jitter, forever, and serves its router again on every new connection.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, broadcast, watch};
use tower_service::Service;

use super::{Client, Dial};
use crate::client::Backoff;
use crate::client::Error;
use crate::extract::Deadline;
use crate::{Request, Response};

/// What a [`ReconnectingClient`] is doing.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// Dialing (attempt count from 0 since the last healthy connection).
    Connecting {
        /// The attempt.
        attempt: u32,
    },
    /// Connected, authenticated, and (if it serves) registered.
    Connected,
    /// The connection failed or was lost.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// Waiting before the next attempt.
    BackingOff {
        /// When the next attempt starts (unless `reconnect_now` is called).
        until: Instant,
    },
}

struct Inner {
    current: watch::Receiver<Option<Client>>,
    events: broadcast::Sender<ConnectionEvent>,
    now: Notify,
    supervisor: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.supervisor.abort();
    }
}

/// A client that keeps itself connected (see
/// [`ClientBuilder::connect_persistent`](super::ClientBuilder::connect_persistent), and
/// [`ReconnectingClient::new`] for any carrier).
///
/// It is a `tower::Service` like [`Client`], so typed calls work on it. While disconnected, a
/// call with a deadline waits for the next connection until the deadline, then fails with
/// [`Error::Timeout`]; a call without one fails at once with [`Error::Unavailable`]. Calls are
/// never retried by it. Dropping every clone stops reconnecting and closes the connection.
#[derive(Clone)]
pub struct ReconnectingClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for ReconnectingClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReconnectingClient")
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

impl ReconnectingClient {
    /// Keeps a connection from `dial` up: dials in the background, and again after any
    /// failure or loss with `backoff`, forever (a [`ClientBuilder`](super::ClientBuilder)'s
    /// [`connect_persistent`](super::ClientBuilder::connect_persistent) is this with its own
    /// backoff). Needs a Tokio runtime.
    pub fn new(dial: impl Dial, backoff: Backoff) -> Self {
        Self::start(Arc::new(dial), backoff, None)
    }

    pub(super) fn start(dial: Arc<dyn Dial>, backoff: Backoff, first: Option<Client>) -> Self {
        let (current_tx, current) = watch::channel(None);
        let (events, _) = broadcast::channel(64);
        let inner = Arc::new_cyclic(|weak: &std::sync::Weak<Inner>| {
            let weak = weak.clone();
            let ev = events.clone();
            let supervisor = tokio::spawn(async move {
                supervise(dial, backoff, first, current_tx, ev, weak).await;
            });
            Inner {
                current,
                events,
                now: Notify::new(),
                supervisor,
            }
        });
        Self { inner }
    }

    /// Whether a connection is up right now.
    pub fn is_connected(&self) -> bool {
        self.inner.current.borrow().is_some()
    }

    /// The current connection, if one is up.
    pub fn current(&self) -> Option<Client> {
        self.inner.current.borrow().clone()
    }

    /// Waits until a connection is up.
    pub async fn connected(&self) -> Client {
        let mut rx = self.inner.current.clone();
        loop {
            if let Some(c) = rx.borrow_and_update().clone() {
                return c;
            }
            if rx.changed().await.is_err() {
                // The supervisor only stops with the last clone, which `self` is not.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Connection state changes from now on.
    pub fn events(&self) -> broadcast::Receiver<ConnectionEvent> {
        self.inner.events.subscribe()
    }

    /// Skips the current backoff wait and dials at once.
    pub fn reconnect_now(&self) {
        self.inner.now.notify_one();
    }
}

async fn supervise(
    dial: Arc<dyn Dial>,
    backoff: Backoff,
    mut first: Option<Client>,
    current: watch::Sender<Option<Client>>,
    events: broadcast::Sender<ConnectionEvent>,
    inner: std::sync::Weak<Inner>,
) {
    let mut attempt = 0u32;
    let places = dial.places().max(1);
    let mut next = 0usize;
    // Failures since the last connection, across addresses: back off only after a full round.
    let mut failed_in_round = 0usize;
    loop {
        let _ = events.send(ConnectionEvent::Connecting { attempt });
        let dialed = match first.take() {
            Some(client) => Ok(client),
            None => dial.dial(next % places).await,
        };
        match dialed {
            Ok(client) => {
                failed_in_round = 0;
                let up = Instant::now();
                let _ = events.send(ConnectionEvent::Connected);
                current.send_replace(Some(client.clone()));
                let conn = client.connection().clone();
                let going_away = async {
                    if client.has_api() {
                        conn.going_away().await
                    } else {
                        std::future::pending().await
                    }
                };
                // Renewing certificates on this connection while it lasts (never done).
                let renewing = async {
                    if let Some(renewed) = dial.renewed_certificates() {
                        super::renew::keep_renewed(client.clone(), renewed).await;
                    }
                    std::future::pending::<String>().await
                };
                let reason = tokio::select! {
                    r = client.closed() => r,
                    r = renewing => r,
                    why = going_away => {
                        // The peer takes no new calls: dial again now, and let the calls
                        // still in flight on the old connection finish there.
                        let old = client.clone();
                        tokio::spawn(async move {
                            let _ = old.closed().await;
                        });
                        format!("the peer is going away: {why}")
                    }
                };
                current.send_replace(None);
                tracing::info!(%reason, "rrssh connection lost; reconnecting");
                let _ = events.send(ConnectionEvent::Disconnected { reason });
                if up.elapsed() >= backoff.reset_after {
                    attempt = 0;
                }
                if places > 1 {
                    next += 1;
                    // Another hub is there: go to it now (unless connections do not last, which
                    // backs off as usual).
                    if up.elapsed() >= Duration::from_secs(1) {
                        continue;
                    }
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, attempt, "rrssh connect failed");
                let _ = events.send(ConnectionEvent::Disconnected {
                    reason: e.to_string(),
                });
                next += 1;
                failed_in_round += 1;
                if !failed_in_round.is_multiple_of(places) {
                    continue;
                }
            }
        }
        let delay = backoff.delay(attempt);
        attempt = attempt.saturating_add(1);
        let _ = events.send(ConnectionEvent::BackingOff {
            until: Instant::now() + delay,
        });
        let Some(inner) = inner.upgrade() else { return };
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = inner.now.notified() => {}
        }
    }
}

impl Service<Request> for ReconnectingClient {
    type Response = Response;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if let Some(mut c) = self.current() {
            return Box::pin(c.call(req));
        }
        let deadline = Deadline::of(req.extensions(), req.headers()).unwrap_or_default();
        let this = self.clone();
        Box::pin(async move {
            let Some(left) = deadline.remaining() else {
                return Err(Error::Unavailable("not connected (reconnecting)".into()));
            };
            match tokio::time::timeout(left, this.connected()).await {
                Ok(mut c) => c.call(req).await,
                Err(_) => Err(Error::Timeout),
            }
        })
    }
}
