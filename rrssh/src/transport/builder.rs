//! Building a client: where to dial (directly or through jump hosts), how to check the host
//! key, how to log in, and whether to open the rrssh API or only use SSH (terminals, tunnels).

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::ChannelMsg;
use russh::keys::PrivateKey;

use super::ConnectError;
use super::SUBSYSTEM;
use super::client::{Carrier, Client};
use super::login::{AgentSocket, Credentials, Password};
use super::ssh_handler::{ClientHandler, ForwardServe, RemoteTargets};
use crate::Router;
use crate::connection::{Connection, ConnectionConfig};
use crate::keys::HostKeyPolicy;
use crate::proto::{Limits, Role};

/// What dialing gives: the session, the server's key fingerprint, where remote tunnels go,
/// and why the SSH connection ended once it has.
pub(super) type Dialed = (
    russh::client::Handle<ClientHandler>,
    String,
    RemoteTargets,
    tokio::sync::watch::Receiver<Option<String>>,
);

/// Through which proxy a client dials.
#[derive(Debug, Clone)]
enum ProxyRoute {
    /// The one the environment names, if any.
    FromEnv,
    Direct,
    Via(crate::proxy::Proxy),
}

/// Builds a [`Client`].
#[must_use]
#[derive(Clone)]
pub struct ClientBuilder {
    addr: String,
    /// More addresses of the same service (hubs of a cluster), tried in turn.
    fallbacks: Vec<String>,
    user: String,
    creds: Credentials,
    host_keys: Option<HostKeyPolicy>,
    /// Only SSH: no rrssh subsystem.
    plain: bool,
    /// Reached through this host (`ssh -J`).
    jump: Option<Box<ClientBuilder>>,
    /// Through which proxy the TCP connection goes.
    proxy: ProxyRoute,
    /// The authorities `wss://` trusts (the system's if `None`).
    tls_roots: Option<super::web::Roots>,
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
            .field("credentials", &self.creds)
            .field("host_keys", &self.host_keys)
            .field("plain", &self.plain)
            .field("jump", &self.jump.as_ref().map(|j| &j.addr))
            .field("proxy", &self.proxy)
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

    /// The certificates kept renewed, if asked.
    pub(super) fn renewed(&self) -> Option<super::dial::Renewed> {
        self.creds.renewed.clone()
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

    /// The private key to log in with (replacing any given before).
    pub fn identity(mut self, key: PrivateKey) -> Self {
        self.creds.keys = vec![Arc::new(key)];
        self
    }

    /// Also logs in with this OpenSSH certificate (`ssh-keygen -s`) of one of the
    /// [`identity`](Self::identity) keys, tried before the keys themselves, as `ssh` tries
    /// `id-cert.pub` before `id`; [`SshLogin`](super::SshLogin) finds it beside the key.
    pub fn certificate(mut self, certificate: crate::keys::Certificate) -> Self {
        self.creds.certificates.push(certificate);
        self
    }

    /// Keeps the [`certificate`](Self::certificate)s given so far renewed, on a
    /// [`connect_persistent`](Self::connect_persistent) client: halfway between receiving one
    /// and its end, each connection asks the server for it again (`POST`
    /// [`RENEW_PATH`](crate::keys::RENEW_PATH), served by `Server::renew_certificates`), and the
    /// next connection logs in with the new one.
    pub fn renew_certificates(mut self) -> Self {
        self.creds.renewed = Some(Arc::new(std::sync::Mutex::new(
            self.creds.certificates.clone(),
        )));
        self
    }

    /// Several private keys to log in with, tried in order (replacing any given before), as
    /// `ssh` tries its `IdentityFile`s.
    pub fn identities(mut self, keys: impl IntoIterator<Item = PrivateKey>) -> Self {
        self.creds.keys = keys.into_iter().map(Arc::new).collect();
        self
    }

    /// Also logs in with the keys of the ssh-agent at `SSH_AUTH_SOCK` (after the
    /// [`identity`](Self::identity) keys; nothing happens if the variable is not set).
    /// ```no_run
    /// # async fn run() -> Result<(), rrssh::transport::ConnectError> {
    /// use rrssh::keys::HostKeyPolicy;
    /// // Any SSH server, as `ssh` logs in: the agent's keys, then a password if it asks.
    /// let client = rrssh::Client::builder("build.example:22")
    ///     .user("ci")
    ///     .agent()
    ///     .password(std::env::var("CI_PASSWORD").unwrap_or_default())
    ///     .host_keys(HostKeyPolicy::Strict("known_hosts".into()))
    ///     .plain()
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn agent(mut self) -> Self {
        self.creds.agent = Some(AgentSocket::Env);
        self
    }

    /// Also logs in with the keys of the ssh-agent listening on this socket.
    pub fn agent_socket(mut self, socket: impl Into<PathBuf>) -> Self {
        self.creds.agent = Some(AgentSocket::Path(socket.into()));
        self
    }

    /// Logs in with this password (`password` or `keyboard-interactive`) when the keys were
    /// refused. It is never logged or printed.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.creds.password = Some(Password::Fixed(password.into().into()));
        self
    }

    /// Asks for a password only when one is needed (the keys were refused and the server
    /// offers `password` or `keyboard-interactive`): `ask` gets the prompt and returns the
    /// answer, or `None` to give up. It runs on a blocking thread, so it may read a terminal.
    pub fn ask_password(
        mut self,
        ask: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.creds.password = Some(Password::Ask(Arc::new(ask)));
        self
    }

    /// Uses SSH only: no rrssh subsystem is opened, so a stock SSH server (OpenSSH's `sshd`)
    /// serves [`Client::terminal`](crate::Client) sessions and tunnels
    /// ([`forward_local`](crate::Client::forward_local),
    /// [`forward_remote`](crate::Client::forward_remote)). Calls on such a client fail with
    /// [`Error::Unavailable`](crate::client::Error::Unavailable).
    pub fn plain(mut self) -> Self {
        self.plain = true;
        self
    }

    /// Reaches the server through `jump` (as `ssh -J` does): `jump` is dialed and logged in
    /// to, and this connection runs inside a `direct-tcpip` channel it opens to this address.
    /// The server's host key is checked under its own name, as if dialed directly.
    pub fn jump(mut self, jump: ClientBuilder) -> Self {
        self.jump = Some(Box::new(jump.plain()));
        self
    }

    /// Dials through this proxy (HTTP `CONNECT` or SOCKS5, see [`crate::proxy`]) instead of
    /// the one the environment names (`ALL_PROXY`, `HTTPS_PROXY`, `NO_PROXY`), the default.
    /// With a [`jump`](Self::jump) host, it is the jump host that is dialed through it.
    pub fn proxy(mut self, proxy: crate::proxy::Proxy) -> Self {
        self.proxy = ProxyRoute::Via(proxy);
        self
    }

    /// The certificate authorities a `wss://` target's certificate is checked against
    /// (default: the system's), such as a private CA's (`--tls-ca`).
    #[cfg(feature = "websocket")]
    #[cfg_attr(docsrs, doc(cfg(feature = "websocket")))]
    pub fn tls_roots(mut self, roots: crate::tls::TrustedRoots) -> Self {
        self.tls_roots = Some(roots);
        self
    }

    /// Dials directly, whatever proxy the environment names.
    pub fn no_proxy(mut self) -> Self {
        self.proxy = ProxyRoute::Direct;
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
        super::ReconnectingClient::start(std::sync::Arc::new(self), backoff, None)
    }

    /// Connects once, failing as [`connect`](Self::connect) does (a refused key, an unknown
    /// host key, no server), then keeps the connection up as
    /// [`connect_persistent`](Self::connect_persistent) does.
    pub async fn connect_then_persist(self) -> Result<super::ReconnectingClient, ConnectError> {
        let first = self.clone().connect().await?;
        let backoff = self.backoff;
        Ok(super::ReconnectingClient::start(
            std::sync::Arc::new(self),
            backoff,
            Some(first),
        ))
    }

    /// Connects once.
    pub async fn connect(self) -> Result<Client, ConnectError> {
        let addr = self.addr.clone();
        tokio::time::timeout(self.timeout, self.connect_inner())
            .await
            .map_err(|_| ConnectError::Timeout(addr))?
    }

    async fn connect_inner(self) -> Result<Client, ConnectError> {
        let (ssh, server_fp, targets, lost) = self.dial(None).await?;
        if self.plain {
            let conn = Connection::unattached(
                "this client uses SSH only (`plain`): the server's rrssh API was not opened",
            );
            return Ok(Client::new(conn, Carrier::Ssh(ssh, targets), Some(lost)));
        }
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
        Ok(Client::new(conn, Carrier::Ssh(ssh, targets), Some(lost)))
    }

    /// Dials (directly, or through the jump host), checks the host key and logs in; returns
    /// the session, the server's key fingerprint, where remote tunnels go, and a signal that
    /// the SSH connection is gone. `forward` serves connections the server forwards to us.
    pub(super) async fn dial(&self, forward: Option<ForwardServe>) -> Result<Dialed, ConnectError> {
        if self.creds.is_empty() {
            return Err(ConnectError::NoIdentity);
        }
        let policy = self
            .host_keys
            .clone()
            .ok_or(ConnectError::NoHostKeyPolicy)?;
        let endpoint = super::web::Endpoint::parse(&self.addr)?;
        let (host, port) = (endpoint.host.clone(), endpoint.port);
        let mut preferred = super::preferred();
        let asks = {
            let (policy, host) = (policy.clone(), host.clone());
            // known_hosts is a file: read on a blocking thread.
            tokio::task::spawn_blocking(move || policy.trusts_authority_for(&host, port))
                .await
                .unwrap_or(false)
        };
        if asks {
            // Ask for a host certificate, as `ssh` does when it knows an authority for the host.
            preferred.host_key_certificates = std::borrow::Cow::Borrowed(&[
                russh::keys::Algorithm::Ed25519,
                russh::keys::Algorithm::Ecdsa {
                    curve: russh::keys::EcdsaCurve::NistP256,
                },
                russh::keys::Algorithm::Ecdsa {
                    curve: russh::keys::EcdsaCurve::NistP384,
                },
                russh::keys::Algorithm::Ecdsa {
                    curve: russh::keys::EcdsaCurve::NistP521,
                },
                russh::keys::Algorithm::Rsa {
                    hash: Some(russh::keys::HashAlg::Sha512),
                },
                russh::keys::Algorithm::Rsa {
                    hash: Some(russh::keys::HashAlg::Sha256),
                },
            ]);
        }
        let config = Arc::new(russh::client::Config {
            nodelay: true,
            preferred,
            keepalive_interval: Some(self.keepalive.0),
            keepalive_max: self.keepalive.1,
            inactivity_timeout: None,
            ..Default::default()
        });
        let rejected = Arc::new(Mutex::new(None));
        let server_key = Arc::new(Mutex::new(None));
        let targets = RemoteTargets::default();
        let (lost_tx, lost) = tokio::sync::watch::channel(None);
        let mut handler = ClientHandler {
            targets: targets.clone(),
            policy,
            host: host.clone(),
            port,
            rejected: rejected.clone(),
            server_key: server_key.clone(),
            forward,
            lost: lost_tx,
            // The jump host's connection lives as long as this one.
            _via: None,
        };
        let connected = match &self.jump {
            None => {
                let stream = self.open_tcp(&host, port).await?;
                let stream = endpoint.carry(stream, self.tls_roots.as_ref()).await?;
                russh::client::connect_stream(config, stream, handler).await
            }
            Some(jump) => {
                let via = Box::pin(jump.clone().connect()).await?;
                let local = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
                let stream = via
                    .open_direct_tcpip(&host, port, local)
                    .await
                    .map_err(|why| ConnectError::Io {
                        addr: format!("{} via {}", self.addr, jump.addr),
                        source: std::io::Error::other(why.message),
                    })?;
                let stream = endpoint
                    .carry(Box::new(stream), self.tls_roots.as_ref())
                    .await?;
                handler._via = Some(via);
                russh::client::connect_stream(config, stream, handler).await
            }
        };
        let mut ssh = match connected {
            Ok(h) => h,
            Err(e) => {
                if let Some(hk) = rejected.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    return Err(ConnectError::HostKey(hk));
                }
                return Err(ConnectError::Ssh(e));
            }
        };
        super::login::login(&mut ssh, &self.user, &self.creds).await?;
        let server_fp = server_key
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default();
        Ok((ssh, server_fp, targets, lost))
    }

    /// The byte stream to `host:port`: a TCP connection, or a tunnel through the proxy.
    async fn open_tcp(
        &self,
        host: &str,
        port: u16,
    ) -> Result<Box<dyn crate::proxy::Tunnel>, ConnectError> {
        let proxy = match &self.proxy {
            ProxyRoute::FromEnv => crate::proxy::from_env(host)?,
            ProxyRoute::Direct => None,
            ProxyRoute::Via(p) => Some(p.clone()),
        };
        if let Some(p) = proxy {
            return Ok(p.connect(host, port).await?);
        }
        let tcp = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|source| ConnectError::Io {
                addr: self.addr.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        Ok(Box::new(tcp))
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

impl Client {
    /// Starts building a client for `addr` (`host:port`; port 8022 if omitted).
    pub fn builder(addr: impl Into<String>) -> ClientBuilder {
        let addr = addr.into();
        ClientBuilder {
            user: super::web::Endpoint::user_in(&addr)
                .or_else(super::local_user)
                .unwrap_or_else(|| "rrssh".to_owned()),
            addr,
            fallbacks: Vec::new(),
            creds: Credentials::default(),
            host_keys: None,
            plain: false,
            jump: None,
            proxy: ProxyRoute::FromEnv,
            tls_roots: None,
            router: None,
            service: None,
            limits: Limits::default(),
            timeout: Duration::from_secs(10),
            backoff: super::Backoff::default(),
            keepalive: super::KEEPALIVE,
        }
    }
}
