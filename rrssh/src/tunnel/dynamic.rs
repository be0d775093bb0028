//! Dynamic forwarding: a local SOCKS5 proxy whose connections are carried to wherever each asks,
//! as the server reaches it (`ssh -D`).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::{TcpListener, ToSocketAddrs};

use super::Source;
use super::socks::{self, Reply};
use crate::{Client, ReconnectingClient};

/// A running dynamic forward: a SOCKS5 proxy on this machine (no authentication: keep it on
/// loopback) whose `CONNECT`s go through the SSH connection to targets the server permits.
/// Dropping it (or [`close`](Self::close)) stops the listener and cuts the connections it
/// carries.
///
/// Each accepted connection has 10 s to say where it goes; a target
/// the server refuses is answered "connection not allowed" (forbidden) or "connection refused"
/// (unreachable), and the connection closed.
pub struct DynamicForward {
    local_addr: SocketAddr,
    stats: Arc<Stats>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Stats {
    opened: AtomicU64,
    refused: AtomicU64,
}

impl DynamicForward {
    async fn start(source: Source, listen: impl ToSocketAddrs) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let local_addr = listener.local_addr()?;
        let stats = Arc::new(Stats::default());
        let task = tokio::spawn({
            let stats = stats.clone();
            async move {
                let accept = move |tcp, from| carry(source.clone(), stats.clone(), tcp, from);
                crate::accept::accept_loop(
                    listener,
                    std::future::pending(),
                    "SOCKS listener",
                    accept,
                )
                .await;
            }
        });
        Ok(Self {
            local_addr,
            stats,
            task,
        })
    }

    /// The local address it listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How many connections were carried so far.
    pub fn opened(&self) -> u64 {
        self.stats.opened.load(Ordering::Relaxed)
    }

    /// How many were answered with a failure: a bad handshake, a target the server refused, or
    /// no connection up.
    pub fn refused(&self) -> u64 {
        self.stats.refused.load(Ordering::Relaxed)
    }

    /// Stops listening and cuts the connections it carries.
    pub fn close(self) {}
}

/// One SOCKS client: its handshake, its tunnel, its bytes.
async fn carry(
    source: Source,
    stats: Arc<Stats>,
    mut tcp: tokio::net::TcpStream,
    from: SocketAddr,
) {
    let refused = |why: &dyn fmt::Display| {
        stats.refused.fetch_add(1, Ordering::Relaxed);
        crate::logging::limited("socks-refused", || {
            tracing::warn!(%from, "SOCKS: {why}");
        });
    };
    let (host, port) = match socks::accept(&mut tcp).await {
        Ok(target) => target,
        Err(e) => return refused(&e),
    };
    let Some(client) = source.client().await else {
        let _ = socks::reply(&mut tcp, Reply::GeneralFailure).await;
        return refused(&"not connected");
    };
    match client.open_direct_tcpip(&host, port, from).await {
        Ok(channel) => {
            if socks::reply(&mut tcp, Reply::Succeeded).await.is_err() {
                return;
            }
            stats.opened.fetch_add(1, Ordering::Relaxed);
            crate::transport::pipe::pipe(tcp, channel).await;
        }
        Err(why) => {
            let code = if why.prohibited {
                Reply::NotAllowed
            } else {
                Reply::ConnectionRefused
            };
            let _ = socks::reply(&mut tcp, code).await;
            refused(&format_args!("{host}:{port}: {why}"));
        }
    }
}

impl Drop for DynamicForward {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for DynamicForward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicForward")
            .field("local_addr", &self.local_addr)
            .field("opened", &self.opened())
            .field("refused", &self.refused())
            .finish()
    }
}

impl Client {
    /// Listens on `listen` as a SOCKS5 proxy and carries each connection to the `host:port` it
    /// asks for, as the server sees it, like `ssh -D listen`. The server must permit each
    /// target (see [`tunnel`](crate::tunnel)). Needs rrssh's own SSH connection.
    pub async fn forward_dynamic(
        &self,
        listen: impl ToSocketAddrs,
    ) -> std::io::Result<DynamicForward> {
        DynamicForward::start(Source::One(self.clone()), listen).await
    }
}

impl ReconnectingClient {
    /// Like [`Client::forward_dynamic`], but persistent: the listener stays up across
    /// reconnections (a connection waits up to 10 s for one to be up).
    pub async fn forward_dynamic(
        &self,
        listen: impl ToSocketAddrs,
    ) -> std::io::Result<DynamicForward> {
        DynamicForward::start(Source::Persistent(self.clone()), listen).await
    }
}
