//! The plain-TCP carrier: the same protocol with no SSH underneath, so no encryption and no
//! authentication. Only for loopback, trusted networks, or behind an SSH forward (a port that
//! `sshd` forwards to a service, see [`RemoteForward`](super::RemoteForward)). Calls carry no
//! [`Peer`](crate::Peer), so authorization layers answer them 401.

use std::time::Duration;

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::client::{Carrier, Client, ConnectError};
use super::server::{Hub, Server, ServerError};
use crate::connection::{Connection, ConnectionConfig};
use crate::hub::Registry;
use crate::proto::Role;

impl Client {
    /// Connects over plain TCP: no SSH, so no encryption and no authentication. Only for
    /// loopback, trusted networks, or a port that `sshd` forwards to a service
    /// ([`RemoteForward`](super::RemoteForward)).
    pub async fn tcp(addr: impl ToSocketAddrs) -> Result<Client, ConnectError> {
        let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host(addr)
            .await
            .map_err(|source| ConnectError::Io {
                addr: "(unresolved)".into(),
                source,
            })?
            .collect();
        let shown = addrs.first().map_or_else(String::new, ToString::to_string);
        let tcp = tokio::net::TcpStream::connect(&addrs[..])
            .await
            .map_err(|source| ConnectError::Io {
                addr: shown,
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let conn = Connection::start(tcp, ConnectionConfig::new(Role::Initiator)).await?;
        Ok(Client::new(conn, Carrier::Tcp))
    }
}

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
        let (stop, mut stop_rx) = watch::channel(false);
        let (router, limits) = (self.router_ref().cloned(), self.limits_of());
        let reg = registry.clone();
        let accept = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            let mut next_id = 1u64 << 62;
            loop {
                let (tcp, remote) = tokio::select! {
                    _ = stop_rx.changed() => break,
                    r = listener.accept() => match r {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                    Some(_) = conns.join_next(), if !conns.is_empty() => continue,
                };
                let _ = tcp.set_nodelay(true);
                next_id += 1;
                let (id, router, reg) = (next_id, router.clone(), reg.clone());
                conns.spawn(async move {
                    let mut cfg = ConnectionConfig::new(Role::Acceptor).serve_opt(router);
                    cfg.limits = limits;
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
                    let name = conn.peer_hello().service.clone();
                    match reg.register(id, name, peer, conn.clone()) {
                        Ok(()) => {
                            let reason = conn.closed().await;
                            reg.unregister(id, reason);
                        }
                        Err(msg) => conn.close(&msg),
                    }
                });
            }
            drop(listener);
            while conns.join_next().await.is_some() {}
        });
        Ok(Hub::new(registry, local_addr, accept, stop))
    }
}
