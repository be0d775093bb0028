//! The SSH client side: dials a server, checks its host key, authenticates with a key, and
//! opens the `rrssh` subsystem. The same client also serves a router to the server if given
//! one (reverse mode).

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use russh::ChannelMsg;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};
use tower_service::Service;

use super::SUBSYSTEM;
use super::ssh_handler::{ClientHandler, ForwardServe, RemoteTargets};
use crate::client::Error;
use crate::connection::{Connection, ConnectionConfig};
use crate::connection::{HandshakeError, ResponseFuture};
use crate::keys::{HostKeyError, HostKeyPolicy, fingerprint};
use crate::proto::{Limits, Role};
use crate::{Request, Response, Router};

/// Why connecting failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The TCP connection failed.
    #[error("cannot connect to {addr}: {source}")]
    Io {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The server's host key was refused.
    #[error(transparent)]
    HostKey(#[from] HostKeyError),
    /// The server refused our key.
    #[error("the server refused the key {fingerprint} for user {user}")]
    AuthRejected {
        /// The user name.
        user: String,
        /// Our key's fingerprint.
        fingerprint: String,
    },
    /// No identity key was given.
    #[error("no identity key: call `identity`")]
    NoIdentity,
    /// No host key policy was given.
    #[error("no host key policy: call `host_keys` (known_hosts file or a pinned key)")]
    NoHostKeyPolicy,
    /// The server refused the rrssh subsystem.
    #[error("the server refused the `rrssh` subsystem")]
    SubsystemRefused,
    /// The SSH layer failed.
    #[error("SSH error: {0}")]
    Ssh(#[from] russh::Error),
    /// The rrssh handshake failed.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// The target cannot be a host name (it starts with `-`, or is empty).
    #[error("bad target `{0}`: a host name cannot be empty or start with `-`")]
    BadTarget(String),
    /// Connecting took too long.
    #[error("connecting to {0} timed out")]
    Timeout(String),
    /// The SSH server refused to listen for us (`tcpip-forward`).
    #[error("the SSH server refused to forward {0}")]
    ForwardRefused(String),
    /// The carrier command (such as `ssh`) could not start or exited during the handshake;
    /// its standard error says why.
    #[error("{program} exited with {status}: {stderr}")]
    Command {
        /// The program.
        program: String,
        /// Its exit status (or why there is none).
        status: String,
        /// What it wrote to standard error, trimmed.
        stderr: String,
    },
}

/// Builds a [`Client`].
#[must_use]
#[derive(Clone)]
pub struct ClientBuilder {
    addr: String,
    /// More addresses of the same service (hubs of a cluster), tried in turn.
    fallbacks: Vec<String>,
    user: String,
    key: Option<Arc<PrivateKey>>,
    host_keys: Option<HostKeyPolicy>,
    router: Option<Router>,
    service: Option<String>,
    limits: Limits,
    timeout: Duration,
    backoff: super::Backoff,
    keepalive: (Duration, usize),
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("addr", &self.addr)
            .field("user", &self.user)
            .field("host_keys", &self.host_keys)
            .field("serves", &self.router.is_some())
            .field("service", &self.service)
            .finish()
    }
}

impl ClientBuilder {
    /// Another address of the same service (another hub of a cluster): a
    /// [`ReconnectingClient`](super::ReconnectingClient) that loses its hub, or is told to go
    /// away, dials the next address at once, and backs off only after every address failed.
    /// (A host name that resolves to several addresses is tried address by address already.)
    pub fn fallback(mut self, addr: impl Into<String>) -> Self {
        self.fallbacks.push(addr.into());
        self
    }

    /// Every address, the first one first.
    pub(super) fn addresses(&self) -> Vec<String> {
        std::iter::once(self.addr.clone())
            .chain(self.fallbacks.iter().cloned())
            .collect()
    }

    /// The same builder, dialing `addr`.
    pub(super) fn at(mut self, addr: String) -> Self {
        self.addr = addr;
        self
    }

    /// The user name to log in as (default: `$USER`, else `rrssh`).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }

    /// The private key to authenticate with.
    pub fn identity(mut self, key: PrivateKey) -> Self {
        self.key = Some(Arc::new(key));
        self
    }

    /// How to check the server's host key.
    pub fn host_keys(mut self, policy: HostKeyPolicy) -> Self {
        self.host_keys = Some(policy);
        self
    }

    /// Serves `router` to the server on the same connection (reverse mode: the server calls it).
    pub fn serve(mut self, router: Router) -> Self {
        self.router = Some(router);
        self
    }

    /// Announces a service name (a hub registers this connection under it).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service = Some(name.into());
        self
    }

    /// Protocol limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// How long connecting (TCP, SSH, authentication, rrssh handshake) may take (default 10 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Dead-peer detection: an SSH keepalive every `interval` when the connection is quiet, and
    /// the connection is declared dead after `misses` unanswered ones (default 5 s × 3). Every
    /// call in flight on a dead connection fails with `Error::Unavailable`.
    pub fn keepalive(mut self, interval: Duration, misses: usize) -> Self {
        self.keepalive = (interval, misses.max(1));
        self
    }

    /// The backoff between reconnection attempts of [`connect_persistent`](Self::connect_persistent).
    pub fn backoff(mut self, backoff: super::Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Returns a client that connects in the background and reconnects after any failure, with
    /// [`backoff`](Self::backoff), forever; a reverse service registers its name again on every
    /// connection. Wait for the first connection with
    /// [`ReconnectingClient::connected`](super::ReconnectingClient::connected). Needs a Tokio
    /// runtime.
    pub fn connect_persistent(self) -> super::ReconnectingClient {
        let backoff = self.backoff;
        super::ReconnectingClient::start(self, backoff)
    }

    /// Connects once.
    pub async fn connect(self) -> Result<Client, ConnectError> {
        let addr = self.addr.clone();
        tokio::time::timeout(self.timeout, self.connect_inner())
            .await
            .map_err(|_| ConnectError::Timeout(addr))?
    }

    async fn connect_inner(self) -> Result<Client, ConnectError> {
        let (ssh, server_fp, targets) = self.dial(None).await?;
        let mut channel = ssh.channel_open_session().await?;
        channel.request_subsystem(true, SUBSYSTEM).await?;
        loop {
            match channel.wait().await {
                Some(ChannelMsg::Success) => break,
                Some(ChannelMsg::Failure | ChannelMsg::Close | ChannelMsg::Eof) | None => {
                    return Err(ConnectError::SubsystemRefused);
                }
                Some(_) => {}
            }
        }
        // Calls from the server side carry the server's identity: its host key, and the
        // address we dialed (a server has no login name).
        let mut cfg = ConnectionConfig::new(Role::Initiator).extension(crate::extract::Peer::new(
            crate::extract::PeerInfo::new("", server_fp).service(self.addr.clone()),
        ));
        cfg.service = self.router.map(crate::connection::Served::new);
        cfg.service_name = self.service;
        cfg.limits = self.limits;
        let conn = Connection::start(channel.into_stream(), cfg).await?;
        Ok(Client::new(conn, Carrier::Ssh(ssh, targets)))
    }

    /// Dials, checks the host key and authenticates; returns the session and the server's
    /// key fingerprint. `forward` serves connections the server forwards to us.
    pub(super) async fn dial(
        &self,
        forward: Option<ForwardServe>,
    ) -> Result<(russh::client::Handle<ClientHandler>, String, RemoteTargets), ConnectError> {
        let key = self.key.clone().ok_or(ConnectError::NoIdentity)?;
        let policy = self
            .host_keys
            .clone()
            .ok_or(ConnectError::NoHostKeyPolicy)?;
        let (host, port) = split_host_port(&self.addr);
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|source| ConnectError::Io {
                addr: self.addr.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let config = Arc::new(russh::client::Config {
            nodelay: true,
            preferred: super::preferred(),
            keepalive_interval: Some(self.keepalive.0),
            keepalive_max: self.keepalive.1,
            inactivity_timeout: None,
            ..Default::default()
        });
        let rejected = Arc::new(Mutex::new(None));
        let server_key = Arc::new(Mutex::new(None));
        let targets = RemoteTargets::default();
        let handler = ClientHandler {
            targets: targets.clone(),
            policy,
            host: host.clone(),
            port,
            rejected: rejected.clone(),
            server_key: server_key.clone(),
            forward,
        };
        let mut ssh = match russh::client::connect_stream(config, tcp, handler).await {
            Ok(h) => h,
            Err(e) => {
                if let Some(hk) = rejected.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    return Err(ConnectError::HostKey(hk));
                }
                return Err(ConnectError::Ssh(e));
            }
        };
        let hash = if key.algorithm().is_rsa() {
            ssh.best_supported_rsa_hash().await?.flatten()
        } else {
            None
        };
        let auth = ssh
            .authenticate_publickey(
                self.user.clone(),
                PrivateKeyWithHashAlg::new(key.clone(), hash),
            )
            .await?;
        if !auth.success() {
            return Err(ConnectError::AuthRejected {
                user: self.user.clone(),
                fingerprint: fingerprint(key.public_key()),
            });
        }
        let server_fp = server_key
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default();
        Ok((ssh, server_fp, targets))
    }

    pub(super) fn router(&self) -> Option<&Router> {
        self.router.as_ref()
    }

    pub(super) fn limits_of(&self) -> Limits {
        self.limits
    }

    pub(super) fn timeout_of(&self) -> Duration {
        self.timeout
    }

    pub(super) fn backoff_of(&self) -> super::Backoff {
        self.backoff
    }

    pub(super) fn addr_of(&self) -> &str {
        &self.addr
    }
}

fn split_host_port(addr: &str) -> (String, u16) {
    if let Some(rest) = addr.strip_prefix('[')
        && let Some((h, p)) = rest.split_once("]:")
    {
        return (h.to_owned(), p.parse().unwrap_or(super::DEFAULT_PORT));
    }
    match addr.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => {
            (h.to_owned(), p.parse().unwrap_or(super::DEFAULT_PORT))
        }
        _ => (addr.to_owned(), super::DEFAULT_PORT),
    }
}

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

/// What carries a client's connection; dropped with the last clone of the client.
pub(super) enum Carrier {
    /// An SSH session this process dialed, and where its remote tunnels go.
    Ssh(russh::client::Handle<ClientHandler>, RemoteTargets),
    /// A plain TCP connection.
    Tcp,
    /// A child process's stdin and stdout (killed when dropped).
    Command(super::command::ChildGuard),
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub(super) fn new(conn: Connection, kind: Carrier) -> Self {
        Self {
            carrier: Arc::new(Carried {
                conn: conn.clone(),
                kind,
            }),
            conn,
        }
    }

    /// Starts building a client for `addr` (`host:port`; port 8022 if omitted).
    pub fn builder(addr: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            addr: addr.into(),
            fallbacks: Vec::new(),
            user: std::env::var("USER").unwrap_or_else(|_| "rrssh".to_owned()),
            key: None,
            host_keys: None,
            router: None,
            service: None,
            limits: Limits::default(),
            timeout: Duration::from_secs(10),
            backoff: super::Backoff::default(),
            keepalive: super::KEEPALIVE,
        }
    }

    /// The rrssh connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Opens a session channel next to the rrssh one (for a terminal).
    pub(crate) async fn open_session_channel(
        &self,
    ) -> Result<russh::Channel<russh::client::Msg>, String> {
        match &self.carrier.kind {
            Carrier::Ssh(h, _) => h
                .channel_open_session()
                .await
                .map_err(|e| format!("cannot open a session channel: {e}")),
            Carrier::Tcp | Carrier::Command(_) => Err(
                "terminals need rrssh's own SSH connection, not a plain-TCP or spawned-command carrier"
                    .to_owned(),
            ),
        }
    }

    /// Opens a `direct-tcpip` channel to `host:port` as the server sees it (a tunnel).
    pub(crate) async fn open_direct_tcpip(
        &self,
        host: &str,
        port: u16,
        from: SocketAddr,
    ) -> Result<russh::ChannelStream<russh::client::Msg>, String> {
        match &self.carrier.kind {
            Carrier::Ssh(h, _) => h
                .channel_open_direct_tcpip(
                    host,
                    u32::from(port),
                    from.ip().to_string(),
                    u32::from(from.port()),
                )
                .await
                .map(russh::Channel::into_stream)
                .map_err(|e| match e {
                    russh::Error::ChannelOpenFailure(why) => {
                        format!("the server refused the tunnel to {host}:{port} ({why:?})")
                    }
                    e => format!("cannot open a tunnel to {host}:{port}: {e}"),
                }),
            Carrier::Tcp | Carrier::Command(_) => Err(
                "tunnels need rrssh's own SSH connection, not a plain-TCP or spawned-command carrier"
                    .to_owned(),
            ),
        }
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
