//! The running server's handle.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use futures_core::Stream;
use tokio::sync::watch;

use super::{HubEvent, PeerClient, PeerSummary, Registry};
use crate::connection::Connection;

/// In reverse mode this is the hub that services dial into.
///
/// Dropping it (or calling [`shutdown`](Self::shutdown)) stops accepting and closes every
/// connection.
pub struct Hub {
    registry: Registry,
    local_addr: SocketAddr,
    accept: tokio::task::JoinHandle<()>,
    stop: watch::Sender<bool>,
    memory: Option<crate::budget::MemoryGauge>,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("local_addr", &self.local_addr)
            .field("registry", &self.registry)
            .finish()
    }
}

impl Hub {
    pub(crate) fn new(
        registry: Registry,
        local_addr: SocketAddr,
        accept: tokio::task::JoinHandle<()>,
        stop: watch::Sender<bool>,
    ) -> Self {
        Self {
            registry,
            local_addr,
            accept,
            stop,
            memory: None,
        }
    }

    /// The same handle, showing what its server's budgets hold.
    pub(crate) fn with_memory(mut self, gauge: crate::budget::MemoryGauge) -> Self {
        self.memory = Some(gauge);
        self
    }

    /// What the server holds for its peers, as its budgets count it (request bodies received
    /// and being read or held by handlers; see [`budget`](crate::budget)); `None` for a handle
    /// without a server.
    pub fn memory(&self) -> Option<crate::budget::MemoryGauge> {
        self.memory.clone()
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The connected peers.
    pub fn peers(&self) -> Vec<PeerSummary> {
        self.registry.peers()
    }

    /// Connect and disconnect events from now on.
    pub fn events(&self) -> impl Stream<Item = HubEvent> + Send + Unpin + 'static {
        self.registry.events()
    }

    /// A client for the peer that registered `name` (see [`PeerClient`]).
    pub fn peer(&self, name: &str) -> PeerClient {
        self.registry.peer(name)
    }

    /// The registry (cheap to clone, for handlers that call peers).
    pub fn registry(&self) -> Registry {
        self.registry.clone()
    }

    /// Stops accepting new connections; those already open go on.
    pub fn stop_accepting(&self) {
        self.stop.send_replace(true);
    }

    /// Shuts down gracefully: stops accepting, says `GOAWAY` on every connection (new calls
    /// from peers are refused with 503, and reconnecting services go elsewhere or come back
    /// later), lets the calls in flight in both directions finish for up to `grace`, then
    /// closes everything.
    /// Returns how many calls were still running when the grace period ended.
    pub async fn shutdown(self, grace: Duration) -> usize {
        self.stop_accepting();
        let conns = self.registry.connections();
        for c in &conns {
            c.go_away("server shutting down");
        }
        let drained = futures_util::future::join_all(conns.iter().map(Connection::drained));
        let _ = tokio::time::timeout(grace, drained).await;
        let mut cut = 0;
        for c in &conns {
            cut += c.calls_in_flight();
            c.close("server shut down");
        }
        if cut > 0 {
            tracing::warn!(calls = cut, "grace period over; calls cut");
        }
        // Let the final GOAWAYs reach the carriers before the sessions are dropped.
        let flushed = futures_util::future::join_all(conns.iter().map(Connection::flushed));
        let _ = tokio::time::timeout(Duration::from_secs(1), flushed).await;
        // Dropping `self` ends the sessions.
        cut
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every session.
        self.accept.abort();
    }
}
