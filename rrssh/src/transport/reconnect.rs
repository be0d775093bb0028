//! A dialing side that stays connected: reconnects after any failure with exponential backoff
//! and full jitter, forever, and serves its router again on every new connection.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, broadcast, watch};
use tower_service::Service;

use super::client::{Client, ClientBuilder};
use crate::client::Error;
use crate::extract::Deadline;
use crate::{Request, Response};

/// Exponential backoff with full jitter between reconnection attempts.
///
/// Attempt `n` (from 0) waits a random time in `[0, min(max, initial × factor^n)]`; the attempt
/// count starts over once a connection has stayed up for `reset_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backoff {
    /// The first ceiling (default 250 ms).
    pub initial: Duration,
    /// How much the ceiling grows per failed attempt (default 2).
    pub factor: u32,
    /// The largest ceiling (default 30 s).
    pub max: Duration,
    /// A connection up this long resets the attempt count (default 10 s).
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(250),
            factor: 2,
            max: Duration::from_secs(30),
            reset_after: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// Sets the first ceiling.
    #[must_use]
    pub fn initial(mut self, d: Duration) -> Self {
        self.initial = d;
        self
    }

    /// Sets the largest ceiling.
    #[must_use]
    pub fn max(mut self, d: Duration) -> Self {
        self.max = d;
        self
    }

    /// The ceiling of attempt `attempt` (from 0).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = self.factor.max(1).saturating_pow(attempt.min(64));
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The wait before attempt `attempt`: uniform in `[0, ceiling(attempt)]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.ceiling(attempt).mul_f64(jitter())
    }
}

/// A uniform number in `[0, 1)` (splitmix64 over a time-seeded counter: jitter, not crypto).
fn jitter() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut z = STATE
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_add(seed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

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

/// A client that keeps itself connected (see [`ClientBuilder::connect_persistent`]).
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
    pub(super) fn start(builder: ClientBuilder, backoff: Backoff) -> Self {
        let (current_tx, current) = watch::channel(None);
        let (events, _) = broadcast::channel(64);
        let inner = Arc::new_cyclic(|weak: &std::sync::Weak<Inner>| {
            let weak = weak.clone();
            let ev = events.clone();
            let supervisor = tokio::spawn(async move {
                supervise(builder, backoff, current_tx, ev, weak).await;
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
    builder: ClientBuilder,
    backoff: Backoff,
    current: watch::Sender<Option<Client>>,
    events: broadcast::Sender<ConnectionEvent>,
    inner: std::sync::Weak<Inner>,
) {
    let mut attempt = 0u32;
    loop {
        let _ = events.send(ConnectionEvent::Connecting { attempt });
        match builder.clone().connect().await {
            Ok(client) => {
                let up = Instant::now();
                let _ = events.send(ConnectionEvent::Connected);
                current.send_replace(Some(client.clone()));
                let conn = client.connection().clone();
                let reason = tokio::select! {
                    r = conn.closed() => r,
                    why = conn.going_away() => {
                        // The peer takes no new calls: dial again now, and let the calls
                        // still in flight on the old connection finish there.
                        let old = client.clone();
                        tokio::spawn(async move {
                            let _ = old.connection().closed().await;
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
            }
            Err(e) => {
                tracing::debug!(error = %e, attempt, "rrssh connect failed");
                let _ = events.send(ConnectionEvent::Disconnected {
                    reason: e.to_string(),
                });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_grow_by_the_factor_up_to_the_cap() {
        let b = Backoff::default();
        let ms = |n| b.ceiling(n).as_millis();
        assert_eq!(
            (0..9).map(ms).collect::<Vec<_>>(),
            [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]
        );
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn delays_are_spread_over_the_whole_range() {
        let b = Backoff::default();
        let delays: Vec<Duration> = (0..2000).map(|_| b.delay(3)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(2)));
        let low = delays
            .iter()
            .filter(|d| **d < Duration::from_millis(500))
            .count();
        let high = delays
            .iter()
            .filter(|d| **d > Duration::from_millis(1500))
            .count();
        // Full jitter: about a quarter in each end of the range.
        assert!((300..700).contains(&low), "{low}");
        assert!((300..700).contains(&high), "{high}");
    }
}
