//! The server side: accepts connections (SSH, or plain TCP), authenticates keys against
//! `authorized_keys`, and runs an rrssh connection on every `rrssh` subsystem channel, next to
//! tunnels and terminals.

mod acceptor;
pub mod access;
mod admission;
mod auth;
mod handler;
mod programs;
pub mod renewal;
mod sessions;
mod shared;
mod slots;
mod ssh;
mod tcp;

use std::fmt;
use std::time::Duration;

use russh::keys::{PrivateKey, PublicKey};

use crate::Router;
use crate::keys::AuthorizedKeys;
use crate::proto::Limits;

use crate::keys::Access;

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
    host_certificates: Vec<crate::keys::Certificate>,
    authorized: AuthorizedKeys,
    /// CAs whose user certificates log in as any of their principals (`TrustedUserCAKeys`).
    trusted_user_cas: Vec<PublicKey>,
    revoked: Option<std::sync::Arc<crate::keys::RevokedKeys>>,
    renewal: Option<(std::sync::Arc<PrivateKey>, Duration)>,
    user_keys: Option<String>,
    limits: Limits,
    auth_rejection_time: Duration,
    auth_timeout: Duration,
    max_auth_attempts: usize,
    keepalive: (Duration, usize),
    max_per_key: usize,
    max_unauthenticated: usize,
    max_unauthenticated_per_source: usize,
    max_sessions: usize,
    max_tunnels: usize,
    max_listeners: usize,
    per_key_memory: usize,
    process_memory: usize,
    max_calls_per_key: usize,
    relay: bool,
    relay_policy: crate::hub::RelayPolicy,
    names: crate::hub::NamePolicy,
    /// What shares the registry with other hubs (a cluster).
    backplane: Option<Box<dyn crate::hub::Backplane>>,
    permit_open: crate::tunnel::PermitOpen,
    permit_listen: crate::tunnel::PermitOpen,
    /// What runs on session channels (terminals).
    programs: Option<std::sync::Arc<dyn crate::terminal::programs::SessionPrograms>>,
    /// Who is told of logins, calls and tunnels.
    observers: Vec<std::sync::Arc<dyn crate::observe::Observer>>,
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
    /// A key in `authorized_keys` is bound to no user name, so it could never log in.
    #[error(
        "authorized_keys line {line}: the key is bound to no user name: add rrssh-users=\"NAME,…\" to the line, or say whose file it is with AuthorizedKeys::owned_by"
    )]
    UnboundKey {
        /// The line.
        line: usize,
    },
    /// The cluster (the `cluster` feature) cannot start (no hub key trusted, a bad hub id),
    /// with why.
    #[error("cluster: {0}")]
    Cluster(String),
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
            host_certificates: Vec::new(),
            authorized: AuthorizedKeys::default(),
            trusted_user_cas: Vec::new(),
            revoked: None,
            renewal: None,
            user_keys: None,
            limits: Limits::default(),
            auth_rejection_time: Duration::from_secs(1),
            auth_timeout: Duration::from_secs(10),
            max_auth_attempts: 4,
            keepalive: crate::transport::KEEPALIVE,
            max_per_key: 1024,
            max_unauthenticated: 100,
            max_unauthenticated_per_source: 10,
            max_sessions: 64,
            max_tunnels: 256,
            max_listeners: 16,
            per_key_memory: crate::budget::DEFAULT_PER_KEY_MEMORY,
            process_memory: crate::budget::DEFAULT_PROCESS_MEMORY,
            max_calls_per_key: crate::budget::DEFAULT_CALLS_PER_KEY,
            relay: false,
            relay_policy: crate::hub::RelayPolicy::default(),
            names: crate::hub::NamePolicy::default(),
            backplane: None,
            permit_open: crate::tunnel::PermitOpen::none(),
            permit_listen: crate::tunnel::PermitOpen::none(),
            programs: None,
            observers: Vec::new(),
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

    /// Serves interactive terminal sessions (`ssh -t`) with this program, to the keys granted
    /// one (`pty` or `rrssh-scopes="terminal"` on their `authorized_keys` line, see
    /// [`Terminal::for_every_key`](crate::terminal::Terminal::for_every_key) for sshd's
    /// default); off by default. See [`terminal`](crate::terminal).
    #[cfg(feature = "terminal")]
    #[cfg_attr(docsrs, doc(cfg(feature = "terminal")))]
    pub fn terminal(mut self, terminal: crate::terminal::Terminal) -> Self {
        self.programs = Some(std::sync::Arc::new(terminal));
        self
    }

    /// Adds a host key.
    pub fn host_key(mut self, key: PrivateKey) -> Self {
        self.host_keys.push(key);
        self
    }

    /// A host certificate of one of the [`host_key`](Self::host_key)s (`ssh-keygen -s -h`),
    /// shown to clients that ask for one (`@cert-authority` in their `known_hosts`), like
    /// sshd's `HostCertificate`: a fleet's clients trust one CA instead of each server's key.
    pub fn host_certificate(mut self, certificate: crate::keys::Certificate) -> Self {
        self.host_certificates.push(certificate);
        self
    }

    /// The keys allowed to connect (public-key authentication only). Each key logs in only
    /// under the user names it is bound to; see [`AuthorizedKeys`].
    pub fn authorized_keys(mut self, keys: AuthorizedKeys) -> Self {
        self.authorized = keys;
        self
    }

    /// Who may log in, as a whole (keys, trusted user CAs, revoked keys): what
    /// [`authorized_keys`](Self::authorized_keys), [`trusted_user_ca_keys`](Self::trusted_user_ca_keys)
    /// and [`revoked_keys`](Self::revoked_keys) set one by one, and what
    /// [`Hub::reload_access`](crate::Hub::reload_access) replaces while the server runs.
    pub fn access(mut self, access: Access) -> Self {
        let (authorized, cas, revoked) = access.into_parts();
        self.authorized = authorized;
        self.trusted_user_cas = cas;
        self.revoked = revoked;
        self
    }

    /// Tells `observer` of every login, call and tunnel (see [`observe`](crate::observe)):
    /// [`Metrics`](crate::metrics::Metrics), an [`AuditLog`](crate::audit::AuditLog), or one
    /// of your own. Repeatable.
    pub fn observe(mut self, observer: std::sync::Arc<dyn crate::observe::Observer>) -> Self {
        self.observers.push(observer);
        self
    }

    /// CAs whose OpenSSH user certificates log in, like sshd's `TrustedUserCAKeys`: as any
    /// user name the certificate names as a principal, with what its critical options and
    /// extensions allow (a `cert-authority` line in [`authorized_keys`](Self::authorized_keys)
    /// does the same for one account, with that line's options). See
    /// [`AuthorizedKeys::authorize_certificate`].
    pub fn trusted_user_ca_keys(mut self, keys: impl IntoIterator<Item = PublicKey>) -> Self {
        self.trusted_user_cas.extend(keys);
        self
    }

    /// Renews the certificates the CA key `ca` signed, for `valid_for` from each renewal, to
    /// callers logged in with one and granted `certificate:renew` (in the certificate,
    /// `--grant scopes=certificate:renew`, or on its CA's line): see [`renewal`].
    pub fn renew_certificates(mut self, ca: PrivateKey, valid_for: Duration) -> Self {
        self.renewal = Some((std::sync::Arc::new(ca), valid_for));
        self
    }

    /// Keys and certificates that may not log in, like sshd's `RevokedKeys`: a KRL or a list of
    /// public keys, read again when the file changes (see [`RevokedKeys`](crate::keys::RevokedKeys)).
    pub fn revoked_keys(mut self, revoked: std::sync::Arc<crate::keys::RevokedKeys>) -> Self {
        self.revoked = Some(revoked);
        self
    }

    /// Each user's own `authorized_keys`, like sshd's `AuthorizedKeysFile`: `%u` in `pattern`
    /// is the login name (`/etc/rrssh/keys/%u`). Its keys log in as that user only. It is read
    /// at every login, after the keys given to [`authorized_keys`](Self::authorized_keys);
    /// user names that could leave the directory (`..`, `/`) are refused before any file is
    /// read.
    pub fn authorized_keys_file(mut self, pattern: impl Into<String>) -> Self {
        self.user_keys = Some(pattern.into());
        self
    }

    /// How many session channels (rrssh connections, terminals) one SSH connection may hold
    /// open at once (default 64, like OpenSSH's `MaxSessions` of 10). The next one is refused
    /// with a resource-shortage channel failure. A channel whose rrssh connection or terminal
    /// session ended is closed by the server and counts no more, whether or not the client
    /// closes it.
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = n.max(1);
        self
    }

    /// How many TCP tunnels (`direct-tcpip` channels) one SSH connection may hold open at once
    /// (default 256).
    pub fn max_tunnels(mut self, n: usize) -> Self {
        self.max_tunnels = n;
        self
    }

    /// How many remote-tunnel listeners (`tcpip-forward`) one SSH connection may hold
    /// (default 16).
    pub fn max_listeners(mut self, n: usize) -> Self {
        self.max_listeners = n;
        self
    }

    /// How many bytes one key may make the server hold over all its connections (default
    /// 256 MiB): request bodies received and not yet read, and bodies its calls' handlers read
    /// whole, until those calls are over. A call that would pass it is refused with 429. See
    /// [`budget`](crate::budget).
    pub fn per_key_memory(mut self, bytes: usize) -> Self {
        self.per_key_memory = bytes;
        self
    }

    /// How many bytes all peers together may make the server hold, counted as for
    /// [`per_key_memory`](Self::per_key_memory) (default 1 GiB). A call that would pass it is
    /// refused with 503.
    pub fn process_memory(mut self, bytes: usize) -> Self {
        self.process_memory = bytes;
        self
    }

    /// How many calls one key may have in flight to the server over all its connections
    /// (default 4,096); one more is reset with 429. Each rrssh connection also has its own
    /// limit, [`Limits::max_concurrent_calls`].
    pub fn max_calls_per_key(mut self, n: usize) -> Self {
        self.max_calls_per_key = n.max(1);
        self
    }

    /// The budgets of this server, for each connection it serves.
    pub(super) fn budgets(&self) -> crate::budget::Budgets {
        crate::budget::Budgets::new(
            self.per_key_memory,
            self.process_memory,
            self.max_calls_per_key,
        )
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

    /// How the relay shares each peer among callers and how long it waits for an answer to
    /// begin (see [`RelayPolicy`](crate::hub::RelayPolicy): 256 calls per caller and peer, 60 s).
    pub fn relay_policy(mut self, policy: crate::hub::RelayPolicy) -> Self {
        self.relay_policy = policy;
        self
    }

    /// Whether keys without `rrssh-services` in `authorized_keys` may register service names
    /// (default off). Names some key's `rrssh-services` lists stay reserved for that key even
    /// then. See [`hub`](crate::hub) for the rules.
    pub fn open_registration(mut self, on: bool) -> Self {
        self.names.open = on;
        self
    }

    /// How long a service name stays its key's after that key's last session of it ended
    /// (default 5 minutes); then any key allowed to may take it.
    pub fn name_grace(mut self, grace: Duration) -> Self {
        self.names.grace = grace;
        self
    }

    /// Joins a cluster of hubs on NATS (see [`cluster`](crate::cluster)): peers connected to any
    /// hub of it are listed and called through this one.
    #[cfg(feature = "cluster")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
    pub fn cluster(mut self, cluster: crate::cluster::Cluster) -> Self {
        self.backplane = Some(Box::new(cluster));
        self
    }

    /// How many service names the hub holds, connected or remembered (default 10,000). The
    /// next registration is refused with an error that says so.
    pub fn max_names(mut self, n: usize) -> Self {
        self.names.max_names = n;
        self
    }

    /// How many authentication attempts a connection gets before it is cut (default 4, like
    /// OpenSSH's `MaxAuthTries` is 6).
    pub fn max_auth_attempts(mut self, n: usize) -> Self {
        self.max_auth_attempts = n.max(1);
        self
    }

    /// How many SSH connections one key may hold at once (default 1024). The next one
    /// authenticates, but its rrssh channel is refused with a `GOAWAY` (code 5) that names the
    /// limit, it may open nothing else, and it is disconnected two seconds later.
    pub fn max_connections_per_key(mut self, n: usize) -> Self {
        self.max_per_key = n.max(1);
        self
    }

    /// How many connections may be in the handshake (not yet authenticated) at once (default
    /// 100, like the top of OpenSSH's `MaxStartups`). When they are all taken, a new
    /// connection from an address that holds fewer handshakes than some other address takes
    /// the place of that address's oldest one, which is dropped; a new connection from an
    /// address holding as many as any other gets one line saying so and is closed before any
    /// SSH is spoken. Addresses holding idle handshakes thus give way to a login from an
    /// address that holds none, however many of them there are.
    pub fn max_unauthenticated(mut self, n: usize) -> Self {
        self.max_unauthenticated = n.max(1);
        self
    }

    /// How many of the unauthenticated connections may come from one address (default 10,
    /// like OpenSSH's `PerSourceMaxStartups`), so one address cannot take them all and lock out
    /// everyone else. IPv4 clients of an IPv6 listener count as their IPv4 address.
    pub fn max_unauthenticated_per_source(mut self, n: usize) -> Self {
        self.max_unauthenticated_per_source = n.max(1);
        self
    }
}
