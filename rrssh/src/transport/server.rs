//! The SSH server side: accepts connections, authenticates keys against `authorized_keys`, and
//! runs an rrssh connection on every `rrssh` subsystem channel.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_core::Stream;
use russh::keys::PrivateKey;
use russh::server::{Auth, Msg, Session};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::SUBSYSTEM;
use crate::Router;
use crate::connection::{Connection, ConnectionConfig};
use crate::extract::Peer;
use crate::hub::{HubEvent, PeerClient, PeerSummary, Registry};
use crate::keys::{AuthorizedKeys, fingerprint};
use crate::proto::frame::goaway;
use crate::proto::{Limits, Role};

/// Configuration of an rrssh SSH server: what it serves, its host key, who may connect.
///
/// ```no_run
/// # async fn run(app: rrssh::Router, host_key: rrssh::keys::PrivateKey) -> Result<(), Box<dyn std::error::Error>> {
/// use rrssh::keys::AuthorizedKeys;
///
/// let hub = rrssh::Server::new()
///     .router(app)
///     .host_key(host_key)
///     .authorized_keys(AuthorizedKeys::load("authorized_keys")?)
///     .bind("127.0.0.1:8022")
///     .await?;
/// println!("listening on {}", hub.local_addr());
/// # Ok(()) }
/// ```
#[must_use]
pub struct Server {
    router: Option<Router>,
    host_keys: Vec<PrivateKey>,
    authorized: AuthorizedKeys,
    limits: Limits,
    auth_rejection_time: Duration,
    auth_timeout: Duration,
    max_auth_attempts: usize,
    keepalive: (Duration, usize),
    max_per_key: usize,
    max_unauthenticated: usize,
    relay: bool,
    permit_open: crate::tunnel::PermitOpen,
    permit_listen: crate::tunnel::PermitOpen,
    #[cfg(feature = "terminal")]
    terminal: Option<crate::terminal::Terminal>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("serves", &self.router.is_some())
            .field("host_keys", &self.host_keys.len())
            .field("authorized_keys", &self.authorized.len())
            .field("limits", &self.limits)
            .finish()
    }
}

/// The server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Binding the address failed.
    #[error("cannot listen: {0}")]
    Bind(#[from] std::io::Error),
    /// No host key was given.
    #[error("the server needs a host key: call `host_key`")]
    NoHostKey,
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl Server {
    /// A server that serves no routes yet (a pure hub until [`router`](Self::router) is set).
    pub fn new() -> Self {
        Self {
            router: None,
            host_keys: Vec::new(),
            authorized: AuthorizedKeys::default(),
            limits: Limits::default(),
            auth_rejection_time: Duration::from_secs(1),
            auth_timeout: Duration::from_secs(10),
            max_auth_attempts: 4,
            keepalive: super::KEEPALIVE,
            max_per_key: 1024,
            max_unauthenticated: 100,
            relay: false,
            permit_open: crate::tunnel::PermitOpen::none(),
            permit_listen: crate::tunnel::PermitOpen::none(),
            #[cfg(feature = "terminal")]
            terminal: None,
        }
    }

    /// The routes served to every connected peer.
    pub fn router(mut self, router: Router) -> Self {
        self.router = Some(router);
        self
    }

    /// The targets callers may open TCP tunnels to (`ssh -L`, or
    /// [`Client::forward_local`](crate::Client::forward_local)); none by default. See
    /// [`tunnel`](crate::tunnel) for the per-key options that narrow it.
    pub fn permit_open(mut self, targets: crate::tunnel::PermitOpen) -> Self {
        self.permit_open = targets;
        self
    }

    /// The addresses callers may ask the server to listen on for remote tunnels (`ssh -R`, or
    /// [`Client::forward_remote`](crate::Client::forward_remote)), as `host:port` patterns;
    /// none by default. `localhost` and an empty address mean `127.0.0.1`.
    pub fn permit_listen(mut self, addresses: crate::tunnel::PermitOpen) -> Self {
        self.permit_listen = addresses;
        self
    }

    /// Serves interactive terminal sessions (`ssh -t`) with this program; off by default. See
    /// [`terminal`](crate::terminal).
    #[cfg(feature = "terminal")]
    #[cfg_attr(docsrs, doc(cfg(feature = "terminal")))]
    pub fn terminal(mut self, terminal: crate::terminal::Terminal) -> Self {
        self.terminal = Some(terminal);
        self
    }

    /// Adds a host key.
    pub fn host_key(mut self, key: PrivateKey) -> Self {
        self.host_keys.push(key);
        self
    }

    /// The keys allowed to connect (public-key authentication only).
    pub fn authorized_keys(mut self, keys: AuthorizedKeys) -> Self {
        self.authorized = keys;
        self
    }

    /// Protocol limits for every connection.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// How long a failed authentication takes (default 1 s, constant time); lower it in tests.
    pub fn auth_rejection_time(mut self, d: Duration) -> Self {
        self.auth_rejection_time = d;
        self
    }

    /// How long a connection may take to authenticate (default 10 s, like OpenSSH's
    /// `LoginGraceTime`).
    pub fn auth_timeout(mut self, d: Duration) -> Self {
        self.auth_timeout = d;
        self
    }

    /// Dead-peer detection: an SSH keepalive every `interval` when the connection is quiet, and
    /// the peer is dropped after `misses` unanswered ones (default 5 s × 3).
    pub fn keepalive(mut self, interval: Duration, misses: usize) -> Self {
        self.keepalive = (interval, misses.max(1));
        self
    }

    pub(super) fn router_ref(&self) -> Option<&Router> {
        self.router.as_ref()
    }

    pub(super) fn limits_of(&self) -> Limits {
        self.limits
    }

    /// Serves caller access on the hub (default off): clients connected to it may call its
    /// named peers by relay, each as far as its key's `call:NAME` scopes allow (see
    /// [`hub::relay`](crate::hub::relay)).
    pub fn relay(mut self, on: bool) -> Self {
        self.relay = on;
        self
    }

    /// How many authentication attempts a connection gets before it is cut (default 4, like
    /// OpenSSH's `MaxAuthTries` is 6).
    pub fn max_auth_attempts(mut self, n: usize) -> Self {
        self.max_auth_attempts = n.max(1);
        self
    }

    /// How many connections one key may hold at once (default 1024). The next one authenticates
    /// but its rrssh channel is refused with a `GOAWAY` (code 5) that names the limit.
    pub fn max_connections_per_key(mut self, n: usize) -> Self {
        self.max_per_key = n.max(1);
        self
    }

    /// How many connections may be in the handshake (not yet authenticated) at once (default
    /// 100, like the top of OpenSSH's `MaxStartups`). Over it, a new TCP connection gets one line saying so
    /// and is closed before any SSH is spoken.
    pub fn max_unauthenticated(mut self, n: usize) -> Self {
        self.max_unauthenticated = n.max(1);
        self
    }

    /// Listens on `addr` and serves until the returned [`Hub`] is shut down or dropped.
    pub async fn bind(self, addr: impl ToSocketAddrs) -> Result<Hub, ServerError> {
        if self.host_keys.is_empty() {
            return Err(ServerError::NoHostKey);
        }
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let mut methods = MethodSet::empty();
        methods.push(MethodKind::PublicKey);
        let config = Arc::new(russh::server::Config {
            keys: self.host_keys,
            methods,
            auth_rejection_time: self.auth_rejection_time,
            auth_rejection_time_initial: Some(Duration::ZERO),
            max_auth_attempts: self.max_auth_attempts,
            inactivity_timeout: None,
            keepalive_interval: Some(self.keepalive.0),
            keepalive_max: self.keepalive.1,
            nodelay: true,
            preferred: super::preferred(),
            ..Default::default()
        });
        let registry = Registry::default();
        let router = if self.relay {
            let relay = crate::hub::relay::relay_router(registry.clone());
            Some(match self.router {
                Some(r) => r.merge(relay),
                None => relay.introspection(true),
            })
        } else {
            self.router
        };
        let shared = Arc::new(Shared {
            router,
            authorized: self.authorized,
            registry: registry.clone(),
            limits: self.limits,
            next_conn: AtomicU64::new(1),
            max_per_key: self.max_per_key,
            per_key: Mutex::new(HashMap::new()),
            permit_open: self.permit_open,
            permit_listen: self.permit_listen,
            #[cfg(feature = "terminal")]
            terminal: self.terminal,
        });
        let auth_timeout = self.auth_timeout;
        let max_unauthenticated = self.max_unauthenticated;
        let unauthenticated = Arc::new(AtomicUsize::new(0));
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let accept = tokio::spawn(async move {
            let mut sessions = JoinSet::new();
            loop {
                let (mut tcp, remote) = tokio::select! {
                    _ = stop_rx.changed() => break,
                    r = listener.accept() => match r {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                    Some(_) = sessions.join_next(), if !sessions.is_empty() => continue,
                };
                let _ = tcp.set_nodelay(true);
                let pending = Pending::enter(&unauthenticated);
                if pending.count > max_unauthenticated {
                    tracing::warn!(%remote, limit = max_unauthenticated, "too many unauthenticated connections; refused");
                    sessions.spawn(async move {
                        use tokio::io::AsyncWriteExt;
                        let line = format!(
                            "rrssh: too many unauthenticated connections (limit {max_unauthenticated}); try again later\r\n"
                        );
                        let _ = tcp.write_all(line.as_bytes()).await;
                        let _ = tcp.shutdown().await;
                        drop(pending);
                    });
                    continue;
                }
                let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
                let authed = Arc::new(AtomicBool::new(false));
                let handler = ConnHandler {
                    shared: shared.clone(),
                    conn_id: id,
                    remote: Some(remote),
                    peer: None,
                    authed: authed.clone(),
                    pending: Some(pending),
                    channels: HashMap::new(),
                    tunnels: None,
                    listeners: HashMap::new(),
                    pty_allowed: false,
                    #[cfg(feature = "terminal")]
                    ptys: HashMap::new(),
                    #[cfg(feature = "terminal")]
                    resizers: HashMap::new(),
                };
                let config = config.clone();
                sessions.spawn(async move {
                    // The whole handshake (version exchange, key exchange, authentication)
                    // must finish within the auth timeout, however slowly the peer sends.
                    let deadline = tokio::time::Instant::now() + auth_timeout;
                    let started = tokio::time::timeout_at(
                        deadline,
                        russh::server::run_stream(config, tcp, handler),
                    );
                    let session = match started.await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, %remote, "SSH handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::warn!(%remote, "SSH handshake timed out");
                            return;
                        }
                    };
                    let handle = session.handle();
                    // russh runs the session in its own task: end it when this task is aborted.
                    let _guard = DisconnectOnDrop(handle.clone());
                    let mut session = std::pin::pin!(session);
                    tokio::select! {
                        r = &mut session => {
                            if let Err(e) = r { tracing::debug!(error = %e, %remote, "session ended"); }
                            return;
                        }
                        _ = tokio::time::sleep_until(deadline) => {}
                    }
                    if !authed.load(Ordering::Acquire) {
                        tracing::warn!(%remote, "authentication timed out");
                        let _ = handle
                            .disconnect(russh::Disconnect::ByApplication, "authentication timed out".into(), String::new())
                            .await;
                        return;
                    }
                    let _ = session.await;
                });
            }
            // Stopped accepting: the listener closes here; sessions run on until shut down.
            drop(listener);
            while sessions.join_next().await.is_some() {}
        });
        Ok(Hub::new(registry, local_addr, accept, stop_tx))
    }
}

struct Shared {
    router: Option<Router>,
    authorized: AuthorizedKeys,
    registry: Registry,
    limits: Limits,
    next_conn: AtomicU64,
    max_per_key: usize,
    /// Open rrssh connections per key fingerprint.
    per_key: Mutex<HashMap<String, usize>>,
    permit_open: crate::tunnel::PermitOpen,
    permit_listen: crate::tunnel::PermitOpen,
    #[cfg(feature = "terminal")]
    terminal: Option<crate::terminal::Terminal>,
}

/// Counts a connection as unauthenticated until dropped.
struct Pending {
    counter: Arc<AtomicUsize>,
    count: usize,
}

impl Pending {
    fn enter(counter: &Arc<AtomicUsize>) -> Self {
        let count = counter.fetch_add(1, Ordering::AcqRel) + 1;
        Self {
            counter: counter.clone(),
            count,
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Holds one of a key's connection slots until dropped.
struct KeySlot {
    shared: Arc<Shared>,
    fingerprint: String,
}

impl KeySlot {
    /// Takes a slot, or says how many the key already holds.
    fn take(shared: &Arc<Shared>, fingerprint: &str) -> Result<Self, usize> {
        let mut map = shared.per_key.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(fingerprint.to_owned()).or_insert(0);
        if *n >= shared.max_per_key {
            return Err(*n);
        }
        *n += 1;
        Ok(Self {
            shared: shared.clone(),
            fingerprint: fingerprint.to_owned(),
        })
    }
}

impl Drop for KeySlot {
    fn drop(&mut self) {
        let mut map = self
            .shared
            .per_key
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.fingerprint) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.fingerprint);
            }
        }
    }
}

struct ConnHandler {
    shared: Arc<Shared>,
    conn_id: u64,
    remote: Option<SocketAddr>,
    peer: Option<Peer>,
    authed: Arc<AtomicBool>,
    /// Counts this connection as unauthenticated until it authenticates.
    pending: Option<Pending>,
    channels: HashMap<ChannelId, Channel<Msg>>,
    /// What the authenticated key may tunnel to.
    tunnels: Option<crate::tunnel::serve::KeyTunnels>,
    /// Ports listened on for the client's remote tunnels; stopped when dropped.
    listeners: HashMap<(String, u32), AbortOnDrop>,
    /// Whether the key may have a pseudo-terminal (`no-pty`, `restrict`).
    pty_allowed: bool,
    /// Pty requests per channel, until the shell or command starts.
    #[cfg(feature = "terminal")]
    ptys: HashMap<ChannelId, crate::terminal::PtyRequest>,
    /// Window size changes for running terminal sessions.
    #[cfg(feature = "terminal")]
    resizers: HashMap<ChannelId, tokio::sync::mpsc::UnboundedSender<(u16, u16)>>,
}

impl ConnHandler {
    /// Starts a terminal session on `channel` if the server serves them and the key may;
    /// `false` otherwise.
    #[cfg(feature = "terminal")]
    fn start_terminal(
        &mut self,
        channel: ChannelId,
        command: Option<String>,
        session: &mut Session,
    ) -> bool {
        let (Some(terminal), Some(peer)) = (self.shared.terminal.clone(), self.peer.clone()) else {
            return false;
        };
        if !self.pty_allowed {
            tracing::warn!(fingerprint = %peer.fingerprint(), "terminal refused: no-pty for this key");
            return false;
        }
        let Some(ch) = self.channels.remove(&channel) else {
            return false;
        };
        let pty = self.ptys.remove(&channel).unwrap_or_default();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.resizers.insert(channel, tx);
        tokio::spawn(crate::terminal::run(
            terminal,
            command,
            pty,
            peer,
            ch,
            session.handle(),
            rx,
        ));
        true
    }

    #[cfg(not(feature = "terminal"))]
    #[allow(
        clippy::unused_self,
        reason = "the same signature as with the terminal feature"
    )]
    fn start_terminal(&mut self, _: ChannelId, _: Option<String>, _: &mut Session) -> bool {
        false
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl ConnHandler {
    fn find(&self, key: &russh::keys::PublicKey) -> Option<&crate::keys::AuthorizedKey> {
        self.shared
            .authorized
            .find(key, self.remote.map(|a| a.ip()))
    }
}

impl russh::server::Handler for ConnHandler {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: russh::server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.find(offer.public_key).is_some() {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let Some(entry) = self.find(key.public_key) else {
            tracing::warn!(user, fingerprint = %fingerprint(key.public_key), remote = ?self.remote, "key refused");
            return Ok(Auth::reject());
        };
        let mut info = entry
            .peer_info(user, fingerprint(key.public_key))
            .connection_id(self.conn_id);
        info.remote_addr = self.remote;
        let tunnels = crate::tunnel::serve::KeyTunnels::of(entry);
        let pty_allowed = {
            let has = |o: &str| entry.options.contains_key(o);
            !has("no-pty") && (!has("restrict") || has("pty"))
        };
        self.tunnels = Some(tunnels);
        self.pty_allowed = pty_allowed;
        self.peer = Some(Peer::new(info));
        self.authed.store(true, Ordering::Release);
        self.pending = None;
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.peer.is_some() {
            self.channels.insert(channel.id(), channel);
            reply.accept().await;
        } else {
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
        }
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let (Some(peer), Some(tunnels)) = (&self.peer, &self.tunnels) else {
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        if let Some(why) =
            tunnels.refusal(&self.shared.permit_open, host_to_connect, port_to_connect)
        {
            tracing::warn!(
                fingerprint = %peer.fingerprint(),
                user = %peer.user(),
                target = %format!("{host_to_connect}:{port_to_connect}"),
                "tunnel refused: {why}"
            );
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        tracing::debug!(fingerprint = %peer.fingerprint(), target = %format!("{host_to_connect}:{port_to_connect}"), "tunnel opened");
        tokio::spawn(crate::tunnel::serve::join(
            channel,
            reply,
            host_to_connect.to_owned(),
            port_to_connect,
        ));
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let (Some(peer), Some(tunnels)) = (&self.peer, &self.tunnels) else {
            return Ok(false);
        };
        let host = crate::tunnel::serve::listen_host(address);
        if let Some(why) = tunnels.listen_refusal(&self.shared.permit_listen, &host, *port) {
            tracing::warn!(
                fingerprint = %peer.fingerprint(),
                user = %peer.user(),
                listen = %format!("{host}:{port}"),
                "remote tunnel refused: {why}"
            );
            return Ok(false);
        }
        let Ok(requested) = u16::try_from(*port) else {
            return Ok(false);
        };
        let listener = match TcpListener::bind((host.as_str(), requested)).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(listen = %format!("{host}:{requested}"), error = %e, "remote tunnel: cannot listen");
                return Ok(false);
            }
        };
        let actual = u32::from(listener.local_addr().map(|a| a.port()).unwrap_or(requested));
        if *port == 0 {
            *port = actual;
        }
        tracing::info!(fingerprint = %peer.fingerprint(), listen = %format!("{host}:{actual}"), "remote tunnel listening");
        let task = tokio::spawn(crate::tunnel::serve::accept_forwarded(
            listener,
            session.handle(),
            address.to_owned(),
            actual,
        ));
        self.listeners
            .insert((address.to_owned(), actual), AbortOnDrop(task));
        Ok(true)
    }

    async fn cancel_tcpip_forward(
        &mut self,
        address: &str,
        port: u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(self.listeners.remove(&(address.to_owned(), port)).is_some())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let (Some(ch), Some(peer)) = (self.channels.remove(&channel), self.peer.clone()) else {
            session.channel_failure(channel)?;
            return Ok(());
        };
        if name != SUBSYSTEM {
            tracing::debug!(name, "refused unknown subsystem");
            session.channel_failure(channel)?;
            return Ok(());
        }
        session.channel_success(channel)?;
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let mut cfg = ConnectionConfig::new(Role::Acceptor)
                .serve_opt(shared.router.clone())
                .extension(peer.clone());
            cfg.limits = shared.limits;
            let conn = match Connection::start(ch.into_stream(), cfg).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "rrssh handshake failed");
                    return;
                }
            };
            let _slot = match KeySlot::take(&shared, peer.fingerprint()) {
                Ok(slot) => slot,
                Err(held) => {
                    tracing::warn!(
                        fingerprint = %peer.fingerprint(),
                        user = %peer.user(),
                        limit = shared.max_per_key,
                        "too many connections for one key; refused"
                    );
                    conn.close_with(
                        goaway::LIMIT,
                        &format!(
                            "too many connections for key {} ({held} open, limit {})",
                            peer.fingerprint(),
                            shared.max_per_key
                        ),
                    );
                    return;
                }
            };
            let id = shared.next_conn.fetch_add(1, Ordering::Relaxed) | (1 << 63);
            let name = conn.peer_hello().service.clone();
            match shared.registry.register(id, name, peer, conn.clone()) {
                Ok(()) => {
                    let reason = conn.closed().await;
                    shared.registry.unregister(id, reason);
                }
                Err(msg) => conn.close(&msg),
            }
        });
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(data).into_owned();
        if self.start_terminal(channel, Some(command), session) {
            session.channel_success(channel)?;
        } else {
            session.channel_failure(channel)?;
        }
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.start_terminal(channel, None, session) {
            session.channel_success(channel)?;
        } else {
            session.channel_failure(channel)?;
        }
        Ok(())
    }

    #[cfg(feature = "terminal")]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        col_width: u32,
        row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.shared.terminal.is_some()
            && self.pty_allowed
            && self.channels.contains_key(&channel)
        {
            self.ptys.insert(
                channel,
                crate::terminal::PtyRequest {
                    term: term.to_owned(),
                    cols: u16::try_from(col_width).unwrap_or(u16::MAX),
                    rows: u16::try_from(row_height).unwrap_or(u16::MAX),
                },
            );
            session.channel_success(channel)?;
        } else {
            session.channel_failure(channel)?;
        }
        Ok(())
    }

    #[cfg(feature = "terminal")]
    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        col_width: u32,
        row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(tx) = self.resizers.get(&channel) {
            let _ = tx.send((
                u16::try_from(col_width).unwrap_or(u16::MAX),
                u16::try_from(row_height).unwrap_or(u16::MAX),
            ));
        }
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        #[cfg(feature = "terminal")]
        {
            self.ptys.remove(&channel);
            self.resizers.remove(&channel);
        }
        Ok(())
    }
}

/// A running rrssh server: its address, the peers connected to it, and clients to call them.
/// Disconnects an SSH session when dropped (the hub went away).
struct DisconnectOnDrop(russh::server::Handle);

impl Drop for DisconnectOnDrop {
    fn drop(&mut self) {
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let handle = self.0.clone();
            rt.spawn(async move {
                let _ = handle
                    .disconnect(
                        russh::Disconnect::ByApplication,
                        "server shutting down".into(),
                        String::new(),
                    )
                    .await;
            });
        }
    }
}

/// In reverse mode this is the hub that services dial into.
///
/// Dropping it (or calling [`shutdown`](Self::shutdown)) stops accepting and closes every
/// connection.
pub struct Hub {
    registry: Registry,
    local_addr: SocketAddr,
    accept: tokio::task::JoinHandle<()>,
    stop: watch::Sender<bool>,
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
    pub(super) fn new(
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
        }
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
