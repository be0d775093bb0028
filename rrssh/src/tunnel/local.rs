//! Local forwarding: a local listener whose connections are carried to a target the server
//! reaches (`ssh -L`).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::{TcpListener, ToSocketAddrs};

use super::Source;
use crate::{Client, ReconnectingClient};

/// A running local forward: a listener on this machine whose connections go, through the SSH
/// connection, to a target the server reaches. Dropping it (or [`close`](Self::close)) stops
/// the listener and cuts the connections it carries.
pub struct LocalForward {
    local_addr: SocketAddr,
    target: String,
    stats: Arc<Stats>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Stats {
    opened: AtomicU64,
    refused: AtomicU64,
    /// The server forbade a tunnel: why.
    prohibited: tokio::sync::watch::Sender<Option<String>>,
}

impl LocalForward {
    async fn start(
        source: Source,
        listen: impl ToSocketAddrs,
        host: &str,
        port: u16,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let local_addr = listener.local_addr()?;
        let stats = Arc::new(Stats::default());
        let target = format!("{host}:{port}");
        let host: Arc<str> = Arc::from(host);
        let task = tokio::spawn({
            let stats = stats.clone();
            async move {
                // Owned by this task: aborting it cuts every tunnel it carries.
                let accept = move |tcp, from: std::net::SocketAddr| {
                    let (source, host, stats) = (source.clone(), host.clone(), stats.clone());
                    async move {
                        let Some(client) = source.client().await else {
                            tracing::warn!(%from, "tunnel: not connected; connection closed");
                            stats.refused.fetch_add(1, Ordering::Relaxed);
                            return;
                        };
                        match client.open_direct_tcpip(&host, port, from).await {
                            Ok(channel) => {
                                stats.opened.fetch_add(1, Ordering::Relaxed);
                                crate::transport::pipe::pipe(tcp, channel).await;
                            }
                            Err(why) => {
                                stats.refused.fetch_add(1, Ordering::Relaxed);
                                // A forbidden tunnel goes to whoever waits on `prohibited()`
                                // (and is logged only if nobody does).
                                let told = why.prohibited && stats.prohibited.receiver_count() > 0;
                                if told {
                                    tracing::debug!(%from, "tunnel: {why}");
                                } else {
                                    crate::logging::limited("tunnel-refused", || {
                                        tracing::warn!(%from, "tunnel: {why}");
                                    });
                                }
                                if why.prohibited {
                                    stats.prohibited.send_replace(Some(why.message));
                                }
                            }
                        }
                    }
                };
                crate::accept::accept_loop(
                    listener,
                    std::future::pending(),
                    "tunnel listener",
                    accept,
                )
                .await;
            }
        });
        Ok(Self {
            local_addr,
            target,
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

    /// How many connections were closed at once because the server refused the tunnel or no
    /// connection was up.
    pub fn refused(&self) -> u64 {
        self.stats.refused.load(Ordering::Relaxed)
    }

    /// Waits until the server forbids a tunnel of this forward (it does not permit the
    /// target to this key, or serves no tunnels), rather than failing to reach the target;
    /// returns its message. Never resolves while every tunnel is permitted.
    pub async fn prohibited(&self) -> String {
        let mut rx = self.stats.prohibited.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(why) => why.clone().unwrap_or_default(),
            Err(_) => std::future::pending().await,
        }
    }

    /// Stops listening and cuts the connections it carries.
    pub fn close(self) {}
}

impl Drop for LocalForward {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for LocalForward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalForward")
            .field("local_addr", &self.local_addr)
            .field("target", &self.target)
            .field("opened", &self.opened())
            .field("refused", &self.refused())
            .finish()
    }
}

impl Client {
    /// Listens on `listen` and carries each connection to `host:port` as the server sees it,
    /// like `ssh -L listen:host:port`. The server must permit the target (see
    /// [`tunnel`](crate::tunnel)); a refused tunnel closes the local connection at once.
    /// Needs rrssh's own SSH connection (not [`Client::tcp`] or [`Client::over_command`]).
    pub async fn forward_local(
        &self,
        listen: impl ToSocketAddrs,
        host: &str,
        port: u16,
    ) -> std::io::Result<LocalForward> {
        LocalForward::start(Source::One(self.clone()), listen, host, port).await
    }
}

impl ReconnectingClient {
    /// Like [`Client::forward_local`], but persistent: the listener stays up across
    /// reconnections, and each new connection goes through whichever SSH connection is up
    /// (waiting up to 10 s for one). Connections carried when a connection drops are cut.
    pub async fn forward_local(
        &self,
        listen: impl ToSocketAddrs,
        host: &str,
        port: u16,
    ) -> std::io::Result<LocalForward> {
        LocalForward::start(Source::Persistent(self.clone()), listen, host, port).await
    }
}
