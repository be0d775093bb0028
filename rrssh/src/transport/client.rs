//! A client: an rrssh connection (or none, for a [`plain`](super::ClientBuilder::plain) one) on the
//! SSH connection, tunnel or command that carries it, and what it can open next to it
//! (terminal sessions, tunnels).

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::watch;
use tower_service::Service;

use super::ssh_handler::{ClientHandler, RemoteTargets};
use crate::client::Error;
use crate::connection::{Connection, ResponseFuture};
use crate::{Request, Response};

/// A connection to an rrssh server over SSH. A [`tower::Service`](Service): typed calls,
/// the untyped builder and client-side layers work on it.
///
/// Clones share the connection. Dropping the last clone closes it (for a reverse service, that
/// stops serving); [`close`](Self::close) does the same and waits until the close is sent.
///
/// ```no_run
/// # async fn run(key: rrssh::keys::PrivateKey) -> Result<(), Box<dyn std::error::Error>> {
/// use rrssh::client::CallExt;
/// use rrssh::keys::HostKeyPolicy;
///
/// let client = rrssh::Client::builder("127.0.0.1:8022")
///     .identity(key)
///     .host_keys(HostKeyPolicy::AcceptNew("known_hosts".into()))
///     .connect()
///     .await?;
/// let hello: serde_json::Value = client.get("/hello").receive().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(super) conn: Connection,
    pub(super) carrier: Arc<Carried>,
    /// Why the SSH connection ended, once it has (clients that dialed SSH themselves).
    lost: Option<watch::Receiver<Option<String>>>,
}

/// A client's carrier with its connection: dropping the last clone of a client closes both,
/// as dropping any client does (a reverse service stops serving when its client is dropped).
pub(super) struct Carried {
    conn: Connection,
    pub(super) kind: Carrier,
}

impl Drop for Carried {
    fn drop(&mut self) {
        self.conn.close("client dropped");
        if let Carrier::Ssh(ssh, _) = std::mem::replace(&mut self.kind, Carrier::Tcp)
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let conn = self.conn.clone();
            rt.spawn(async move {
                conn.flushed().await;
                let _ = ssh
                    .disconnect(russh::Disconnect::ByApplication, "client dropped", "")
                    .await;
            });
        }
    }
}

/// Why a tunnel was not opened.
#[derive(Debug, Clone)]
pub(crate) struct TunnelRefused {
    /// The server forbids it (its permissions), rather than failing to reach the target.
    pub(crate) prohibited: bool,
    pub(crate) message: String,
}

impl fmt::Display for TunnelRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What carries a client's connection; dropped with the last clone of the client.
pub(super) enum Carrier {
    /// An SSH session this process dialed, and where its remote tunnels go.
    Ssh(russh::client::Handle<ClientHandler>, RemoteTargets),
    /// A plain TCP connection.
    Tcp,
    /// A child process's stdin and stdout (killed when dropped).
    Command(super::child::ChildGuard),
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub(super) fn new(
        conn: Connection,
        kind: Carrier,
        lost: Option<watch::Receiver<Option<String>>>,
    ) -> Self {
        Self {
            carrier: Arc::new(Carried {
                conn: conn.clone(),
                kind,
            }),
            conn,
            lost,
        }
    }

    /// Whether this client has the server's rrssh API (it was not built
    /// [`plain`](super::ClientBuilder::plain)).
    pub fn has_api(&self) -> bool {
        self.conn.is_attached()
    }

    /// Waits until the connection is over (the rrssh connection closed, or the SSH connection
    /// under it ended); returns why.
    pub fn closed(&self) -> impl Future<Output = String> + Send + 'static {
        let api = self.has_api().then(|| self.conn.closed());
        let lost = self.lost.clone();
        async move {
            let ssh = async move {
                match lost {
                    Some(mut rx) => match rx.wait_for(Option::is_some).await {
                        Ok(r) => r.clone().unwrap_or_default(),
                        Err(_) => "SSH connection closed".to_owned(),
                    },
                    None => std::future::pending().await,
                }
            };
            match api {
                Some(api) => tokio::select! { r = api => r, r = ssh => r },
                None => ssh.await,
            }
        }
    }

    /// Whether the connection is over.
    pub fn is_closed(&self) -> bool {
        (self.has_api() && self.conn.closed_reason().is_some())
            || self.lost.as_ref().is_some_and(|rx| rx.borrow().is_some())
    }

    /// The rrssh connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Opens a session channel next to the rrssh one (for a terminal).
    /// `Ok(None)` when the carrier is not an SSH connection of ours.
    pub(crate) async fn open_session_channel(
        &self,
    ) -> Result<Option<russh::Channel<russh::client::Msg>>, russh::Error> {
        match &self.carrier.kind {
            Carrier::Ssh(h, _) => h.channel_open_session().await.map(Some),
            Carrier::Tcp | Carrier::Command(_) => Ok(None),
        }
    }

    /// Opens a `direct-tcpip` channel to `host:port` as the server sees it (a tunnel). An
    /// error says why, and whether the server forbids the tunnel (rather than failing to reach
    /// the target).
    pub(crate) async fn open_direct_tcpip(
        &self,
        host: &str,
        port: u16,
        from: SocketAddr,
    ) -> Result<russh::ChannelStream<russh::client::Msg>, TunnelRefused> {
        let Carrier::Ssh(h, _) = &self.carrier.kind else {
            return Err(TunnelRefused {
                prohibited: true,
                message: "tunnels need an SSH connection rrssh dialed itself, not a plain-TCP or \
                          spawned-command carrier"
                    .to_owned(),
            });
        };
        h.channel_open_direct_tcpip(
            host,
            u32::from(port),
            from.ip().to_string(),
            u32::from(from.port()),
        )
        .await
        .map(russh::Channel::into_stream)
        .map_err(|e| match e {
            russh::Error::ChannelOpenFailure(
                russh::ChannelOpenFailure::AdministrativelyProhibited,
            ) => TunnelRefused {
                prohibited: true,
                message: format!("the server does not permit tunnels to {host}:{port}"),
            },
            russh::Error::ChannelOpenFailure(why) => TunnelRefused {
                prohibited: false,
                message: format!("the server could not open {host}:{port} ({why:?})"),
            },
            e => TunnelRefused {
                prohibited: false,
                message: format!("cannot open a tunnel to {host}:{port}: {e}"),
            },
        })
    }

    /// Asks the server to listen on `bind:port` (0: any free port) and to forward each
    /// connection there to us, for `host:target` on this side; returns the port it listens on.
    pub(crate) async fn request_remote(
        &self,
        bind: &str,
        port: u16,
        host: &str,
        target: u16,
    ) -> Result<u16, String> {
        let Carrier::Ssh(ssh, targets) = &self.carrier.kind else {
            return Err(
                "tunnels need rrssh's own SSH connection, not a plain-TCP or spawned-command carrier"
                    .to_owned(),
            );
        };
        let set = |p: u16| {
            targets
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(u32::from(p), (host.to_owned(), target));
        };
        // A fixed port is known before the server starts listening: route it first.
        if port != 0 {
            set(port);
        }
        match ssh.tcpip_forward(bind, u32::from(port)).await {
            Ok(allocated) => {
                let actual = if port == 0 {
                    u16::try_from(allocated).map_err(|_| "bad port from the server".to_owned())?
                } else {
                    port
                };
                set(actual);
                Ok(actual)
            }
            Err(e) => {
                if port != 0 {
                    targets
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&u32::from(port));
                }
                Err(match e {
                    russh::Error::RequestDenied => {
                        format!("the server refused to listen on {bind}:{port}")
                    }
                    e => format!("cannot ask the server to listen on {bind}:{port}: {e}"),
                })
            }
        }
    }

    /// Stops a remote tunnel started with [`request_remote`](Self::request_remote).
    pub(crate) fn cancel_remote(&self, bind: String, port: u16) {
        let Carrier::Ssh(_, targets) = &self.carrier.kind else {
            return;
        };
        targets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&u32::from(port));
        let client = self.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Carrier::Ssh(ssh, _) = &client.carrier.kind {
                    let _ = ssh.cancel_tcpip_forward(bind, u32::from(port)).await;
                }
            });
        }
    }

    /// Closes the connection.
    pub async fn close(&self) {
        self.conn.close("client closed");
        self.conn.flushed().await;
        match &self.carrier.kind {
            Carrier::Ssh(ssh, _) => {
                let _ = ssh
                    .disconnect(russh::Disconnect::ByApplication, "bye", "")
                    .await;
            }
            Carrier::Tcp => {}
            Carrier::Command(child) => child.kill(),
        }
    }
}

impl Service<Request> for Client {
    type Response = Response;
    type Error = Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> ResponseFuture {
        self.conn.call(req)
    }
}
