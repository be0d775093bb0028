//! The running server's handle.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_core::Stream;
use tokio::sync::watch;

use super::listeners::ServeSsh;
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
    /// The server's SSH side, for more listeners of it (SSH over WebSocket).
    ssh: Option<Arc<dyn ServeSsh>>,
    /// The tasks of those listeners, ended with the hub.
    listeners: Mutex<Vec<tokio::task::AbortHandle>>,
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
            ssh: None,
            listeners: Mutex::new(Vec::new()),
        }
    }

    /// The same handle, able to take more listeners for its server's SSH side.
    pub(crate) fn with_ssh(mut self, ssh: Arc<dyn ServeSsh>) -> Self {
        self.ssh = Some(ssh);
        self
    }

    /// The server's SSH side, if this hub has a server with one.
    #[cfg_attr(not(feature = "websocket"), allow(dead_code))]
    pub(crate) fn ssh(&self) -> Option<Arc<dyn ServeSsh>> {
        self.ssh.clone()
    }

    /// Resolves when the hub stops accepting (or is gone).
    #[cfg_attr(not(feature = "websocket"), allow(dead_code))]
    pub(crate) fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.stop.subscribe();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    }

    /// Ends `task` (a listener of this hub) when the hub is dropped.
    #[cfg_attr(not(feature = "websocket"), allow(dead_code))]
    pub(crate) fn attach(&self, task: tokio::task::AbortHandle) {
        self.listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
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

    /// Replaces who may log in (`authorized_keys`, trusted user CAs, revoked keys) for the
    /// logins from now on; connections already logged in go on as they are, as under sshd.
    /// Names reserved by `rrssh-services` lists follow the new keys. An access that cannot be
    /// used (a key bound to no user) is refused, and the old one stays.
    pub fn reload_access(
        &self,
        access: crate::keys::Access,
    ) -> Result<(), crate::keys::AccessError> {
        match &self.ssh {
            Some(ssh) => ssh.reload_access(access),
            None => Err(crate::keys::AccessError::NoLogins),
        }
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
        // Aborting the accept task drops its JoinSet, which aborts every session; so for every
        // other listener.
        self.accept.abort();
        let listeners =
            std::mem::take(&mut *self.listeners.lock().unwrap_or_else(|e| e.into_inner()));
        for task in listeners {
            task.abort();
        }
    }
}
