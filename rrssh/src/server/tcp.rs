//! Serving over plain TCP: the same protocol with no SSH underneath (see
//! [`Client::tcp`](crate::Client::tcp)).

use std::sync::Arc;

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::watch;

use super::{Server, ServerError};
use crate::connection::{Connection, ConnectionConfig, Served};
use crate::hub::{Hub, Registry};
use crate::proto::Role;

/// Closes a connection when dropped (its task was aborted: the hub went away).
struct CloseOnDrop(Connection);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close("server shutting down");
    }
}

impl Server {
    /// Serves the router over plain TCP on `addr`, without SSH: no encryption, no host key, no
    /// `authorized_keys`, and calls carry no [`Peer`](crate::Peer) (authorization layers
    /// answer them 401). Only for loopback or trusted networks. The returned [`Hub`] works as for [`bind`](Self::bind).
    pub async fn bind_tcp(self, addr: impl ToSocketAddrs) -> Result<Hub, ServerError> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let registry = Registry::default();
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let (router, limits) = (self.router_ref().cloned(), self.limits_of());
        // No keys: every connection is charged to the server's budget alone.
        let budgets = Arc::new(self.budgets());
        let gauge = budgets.gauge();
        let reg = registry.clone();
        let stop = async move {
            let _ = stop_rx.changed().await;
        };
        let accept = tokio::spawn(crate::accept::accept_loop(
            listener,
            stop,
            "plain-TCP server",
            move |tcp, remote| {
                let (router, reg) = (router.clone(), reg.clone());
                let account = budgets.account(None);
                let span = tracing::info_span!("connection", carrier = "tcp", %remote);
                let serving = async move {
                    let mut cfg = ConnectionConfig::new(Role::Acceptor);
                    cfg.service = router.map(Served::new);
                    cfg.limits = limits;
                    cfg.account = account;
                    let conn = match Connection::start(tcp, cfg).await {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::debug!(error = %e, %remote, "rrssh handshake failed");
                            return;
                        }
                    };
                    let _guard = CloseOnDrop(conn.clone());
                    let peer =
                        crate::Peer::new(crate::extract::PeerInfo::new("", "").remote_addr(remote));
                    reg.hold(peer, conn.clone()).await;
                };
                tracing::Instrument::instrument(serving, span)
            },
        ));
        Ok(Hub::new(registry, local_addr, accept, stop_tx).with_memory(gauge))
    }
}
