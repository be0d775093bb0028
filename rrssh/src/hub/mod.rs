//! The registry of connected peers on a serving end (the hub in reverse mode): who is
//! connected, under which service name, and a client to call each of them.
//!
//! Service names belong to keys:
//!
//! - A name listed (or matched by a pattern) in some key's `rrssh-services="…"` is reserved for
//!   the keys whose lists match it: no other key can take it, even while its owner is away.
//! - A key without `rrssh-services` registers names only if the hub allows open registration
//!   ([`Server::open_registration`](crate::Server::open_registration)), and never a reserved one.
//! - A name belongs to the key that registered it; the same key registering it again replaces
//!   the older session. Once the owner has been gone for the grace period
//!   ([`Server::name_grace`](crate::Server::name_grace), 5 minutes), the name is free again.
//! - Names are 1 to [`MAX_NAME`] of `A-Z a-z 0-9 . _ - :`, and a hub holds at most
//!   [`Server::max_names`](crate::Server::max_names) of them.

mod handle;
pub(crate) mod listeners;
mod names;
pub mod relay;
mod remote;
mod share;
pub mod stats;
pub mod watch;

pub use self::handle::Hub;
pub use self::names::MAX_NAME;
pub(crate) use self::names::NamePolicy;
use self::names::{Owned, forget_stale};
pub use self::remote::RemotePeer;
pub(crate) use self::remote::{Backplane, Remote, RemoteCall};
pub use self::share::RelayPolicy;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::SystemTime;

use futures_core::Stream;
use tokio::sync::broadcast;
use tower_service::Service;

use crate::client::Error;
use crate::connection::Connection;
use crate::connection::ResponseFuture;
use crate::extract::Peer;
use crate::{Request, Response};

/// A connected peer, as [`Registry::peers`] lists it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PeerSummary {
    /// The service name it announced, if any.
    pub name: Option<String>,
    /// Its identity.
    pub peer: Peer,
    /// When it connected (for a peer on another hub: when this hub learned of it).
    pub connected_at: SystemTime,
    /// The hub of a cluster holding it, if not this one.
    pub hub: Option<String>,
    /// The calls relayed to it by this hub (zeros for a peer on another hub).
    pub stats: stats::ServiceStats,
}

/// A change in the set of connected peers (the seeds' "connections" channel).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum HubEvent {
    /// A peer connected (and registered its name, if it announced one).
    Connected {
        /// The announced name.
        name: Option<String>,
        /// Its identity.
        peer: Peer,
    },
    /// A peer disconnected.
    Disconnected {
        /// The announced name.
        name: Option<String>,
        /// Its identity.
        peer: Peer,
        /// Why.
        reason: String,
    },
    /// A peer tried to register a name owned by another key, or one its `authorized_keys` line
    /// does not allow (`rrssh-services`), and was refused.
    Refused {
        /// The name it asked for.
        name: String,
        /// Its identity.
        peer: Peer,
    },
}

struct Entry {
    name: Option<String>,
    peer: Peer,
    conn: Connection,
    connected_at: SystemTime,
    stats: Arc<stats::Counters>,
}

#[derive(Default)]
struct State {
    by_id: HashMap<u64, Entry>,
    /// Name → its owner and session.
    names: HashMap<String, Owned>,
    policy: NamePolicy,
}

/// The registry; cheap to clone.
#[derive(Clone)]
pub struct Registry {
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<HubEvent>,
    /// The other hubs of a cluster, once joined.
    remote: Arc<std::sync::OnceLock<Arc<dyn Remote>>>,
    /// Relayed calls in flight per peer and caller, and the relay's rules.
    shares: share::Shares,
    relay_policy: RelayPolicy,
    /// The id of the next connection registered (every listener's, from this one counter).
    next_id: Arc<AtomicU64>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::with_policy(NamePolicy {
            open: true,
            ..NamePolicy::default()
        })
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("peers", &self.lock().by_id.len())
            .finish()
    }
}

impl Registry {
    /// A registry applying `policy` to service names.
    pub(crate) fn with_policy(policy: NamePolicy) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                policy,
                ..State::default()
            })),
            events: broadcast::channel(1024).0,
            remote: Arc::default(),
            shares: share::Shares::default(),
            relay_policy: RelayPolicy::default(),
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Holds an accepted rrssh connection in the registry for its whole life: registers it
    /// under the name its HELLO gives (or as an unnamed caller), waits until it closes, and
    /// unregisters it; a refused name closes it with the reason. Every listener (SSH, plain
    /// TCP) registers its connections through here.
    pub(crate) async fn hold(&self, peer: Peer, conn: Connection) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let name = conn.peer_hello().service.clone();
        match self.register(id, name, peer, conn.clone()) {
            Ok(()) => {
                let reason = conn.closed().await;
                self.unregister(id, reason);
            }
            Err(msg) => conn.close(&msg),
        }
    }

    /// Reserves the names the `rrssh-services` lists in `keys` name, instead of those reserved
    /// before (names already registered stay with their owners).
    pub(crate) fn reserve_from(&self, keys: &crate::keys::AuthorizedKeys) {
        let reserved = keys.iter().filter_map(|k| k.services()).collect();
        let old = std::mem::replace(&mut self.lock().policy.reserved, reserved);
        drop(old);
    }

    /// The same registry, relaying calls under `policy`.
    pub(crate) fn with_relay_policy(mut self, policy: RelayPolicy) -> Self {
        self.relay_policy = policy;
        self
    }

    /// Joins the other hubs of a cluster: names are published to them, and peers they hold are
    /// listed and called through them.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn set_remote(&self, remote: Arc<dyn Remote>) {
        let _ = self.remote.set(remote);
    }

    fn remote(&self) -> Option<&Arc<dyn Remote>> {
        self.remote.get()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a connection under the rules of its [`NamePolicy`]: a name is owned by the
    /// first key that registers it (or reserved for the keys whose `rrssh-services` list it);
    /// the same key registering it again replaces the older session (newest wins), another key
    /// is refused (`Err`).
    pub(crate) fn register(
        &self,
        id: u64,
        name: Option<String>,
        peer: Peer,
        conn: Connection,
    ) -> Result<(), String> {
        let refuse = |n: &str, peer: &Peer, why: String| {
            crate::logging::limited("name-refused", || {
                tracing::warn!(name = %n.escape_debug().to_string().chars().take(80).collect::<String>(), fingerprint = %peer.fingerprint(), "service name refused: {why}");
            });
            let _ = self.events.send(HubEvent::Refused {
                name: n.chars().take(names::MAX_NAME).collect(),
                peer: peer.clone(),
            });
            Err(why)
        };
        let replaced = {
            let mut st = self.lock();
            let mut replaced = None;
            if let Some(n) = &name {
                if let Some(why) = st.policy.refusal(&peer, n) {
                    drop(st);
                    return refuse(n, &peer, why);
                }
                let (grace, max) = (st.policy.grace, st.policy.max_names);
                // The name asked for is free once its owner has been away past the grace
                // period; the whole table is swept only when it is full, not at every
                // registration (a reconnect storm would make that quadratic).
                let now = std::time::Instant::now();
                let expired =
                    |o: &Owned| o.away_since.is_some_and(|t| now.duration_since(t) >= grace);
                if st.names.get(n).is_some_and(expired) {
                    st.names.remove(n);
                }
                if st.names.len() >= max && !st.names.contains_key(n) {
                    forget_stale(&mut st.names, grace, now);
                }
                if let Some(r) = self.remote().and_then(|r| r.lookup(n))
                    && r.fingerprint != peer.fingerprint()
                {
                    drop(st);
                    return refuse(
                        n,
                        &peer,
                        format!(
                            "the service name `{n}` belongs to another key (on hub {})",
                            r.hub
                        ),
                    );
                }
                match st.names.get(n) {
                    Some(o) if o.owner != peer.fingerprint() => {
                        drop(st);
                        return refuse(
                            n,
                            &peer,
                            format!("the service name `{n}` belongs to another key"),
                        );
                    }
                    Some(o) => replaced = Some(o.id),
                    None if st.names.len() >= max => {
                        drop(st);
                        return refuse(
                            n,
                            &peer,
                            format!("the hub holds its limit of {max} service names"),
                        );
                    }
                    None => {}
                }
                st.names.insert(
                    n.clone(),
                    Owned {
                        owner: peer.fingerprint().to_owned(),
                        id,
                        away_since: None,
                    },
                );
            }
            st.by_id.insert(
                id,
                Entry {
                    name: name.clone(),
                    peer: peer.clone(),
                    conn,
                    connected_at: SystemTime::now(),
                    stats: Arc::default(),
                },
            );
            replaced.and_then(|old| st.by_id.get(&old).map(|e| e.conn.clone()))
        };
        if let Some(old) = replaced {
            old.close("replaced by a newer session of the same name");
        }
        if let (Some(r), Some(n)) = (self.remote(), &name) {
            r.published(n, peer.fingerprint(), peer.user());
        }
        tracing::info!(name = ?name, user = %peer.user(), fingerprint = %peer.fingerprint(), "peer connected");
        let _ = self.events.send(HubEvent::Connected { name, peer });
        Ok(())
    }

    /// Forgets a connection; its name stays its key's for the grace period.
    pub(crate) fn unregister(&self, id: u64, reason: String) {
        let entry = {
            let mut st = self.lock();
            let entry = st.by_id.remove(&id);
            let mut withdrawn = None;
            if let Some(Entry { name: Some(n), .. }) = &entry
                && let Some(o) = st.names.get_mut(n)
                && o.id == id
            {
                o.id = 0;
                o.away_since = Some(std::time::Instant::now());
                withdrawn = Some(n.clone());
            }
            drop(st);
            if let (Some(r), Some(n)) = (self.remote(), withdrawn) {
                r.withdrawn(&n);
            }
            entry
        };
        if let Some(e) = entry {
            tracing::info!(name = ?e.name, reason = %reason, "peer disconnected");
            let _ = self.events.send(HubEvent::Disconnected {
                name: e.name,
                peer: e.peer,
                reason,
            });
        }
    }

    /// The connected peers.
    pub fn peers(&self) -> Vec<PeerSummary> {
        let st = self.lock();
        let mut out: Vec<PeerSummary> = st
            .by_id
            .values()
            .map(|e| PeerSummary {
                name: e.name.clone(),
                peer: e.peer.clone(),
                connected_at: e.connected_at,
                hub: None,
                stats: e.stats.read(),
            })
            .collect();
        drop(st);
        if let Some(r) = self.remote() {
            for p in r.peers() {
                let info = crate::extract::PeerInfo::new(p.user, p.fingerprint).service(&p.name);
                out.push(PeerSummary {
                    name: Some(p.name),
                    peer: Peer::new(info),
                    connected_at: SystemTime::now(),
                    hub: Some(p.hub),
                    stats: stats::ServiceStats::default(),
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The event channel, for a watcher that wants to know what it missed.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<HubEvent> {
        self.events.subscribe()
    }

    /// A stream of connect and disconnect events from now on.
    pub fn events(&self) -> impl Stream<Item = HubEvent> + Send + Unpin + 'static {
        let rx = self.events.subscribe();
        Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(e) => return Some((e, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }))
    }

    /// A client for the peer registered under `name`. It looks the name up on each call, so it
    /// follows reconnections; calls while the peer is away fail with [`Error::Unavailable`].
    pub fn peer(&self, name: &str) -> PeerClient {
        PeerClient {
            registry: self.clone(),
            name: Arc::from(name),
        }
    }

    /// Every open connection.
    pub(crate) fn connections(&self) -> Vec<Connection> {
        self.lock().by_id.values().map(|e| e.conn.clone()).collect()
    }

    /// A call to the peer `name` if it is connected to this hub (never through another hub).
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn call_local(&self, name: &str, req: Request) -> Option<ResponseFuture> {
        let mut conn = self.connection_of(name)?;
        Some(conn.call(req))
    }

    /// The counters of the peer connected to this hub under `name`.
    pub(crate) fn counters_of(&self, name: &str) -> Option<Arc<stats::Counters>> {
        let st = self.lock();
        let owned = st.names.get(name)?;
        st.by_id.get(&owned.id).map(|e| e.stats.clone())
    }

    fn connection_of(&self, name: &str) -> Option<Connection> {
        let st = self.lock();
        let owned = st.names.get(name)?;
        st.by_id.get(&owned.id).map(|e| e.conn.clone())
    }
}

/// A client for a named peer of a hub; a [`tower::Service`](tower_service::Service), so typed calls work:
/// `get_user::call(&hub.peer("billing"), 7)`.
#[derive(Clone)]
pub struct PeerClient {
    registry: Registry,
    name: Arc<str>,
}

impl fmt::Debug for PeerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerClient")
            .field("name", &self.name)
            .finish()
    }
}

impl PeerClient {
    /// Whether the peer is connected now, to this hub or (in a cluster) to another.
    pub fn is_connected(&self) -> bool {
        self.registry.connection_of(&self.name).is_some()
            || self
                .registry
                .remote()
                .is_some_and(|r| r.lookup(&self.name).is_some())
    }

    /// The hub of a cluster holding the peer, if another hub does (and this one does not).
    pub fn remote_hub(&self) -> Option<String> {
        if self.registry.connection_of(&self.name).is_some() {
            return None;
        }
        self.registry.remote()?.lookup(&self.name).map(|r| r.hub)
    }
}

impl Service<Request> for PeerClient {
    type Response = Response;
    type Error = Error;
    type Future = futures_util::future::Either<
        ResponseFuture,
        futures_util::future::Either<RemoteCall, std::future::Ready<Result<Response, Error>>>,
    >;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        use futures_util::future::Either;
        if let Some(mut conn) = self.registry.connection_of(&self.name) {
            return Either::Left(conn.call(req));
        }
        if let Some(call) = self.registry.remote().and_then(|r| r.call(&self.name, req)) {
            return Either::Right(Either::Left(call));
        }
        Either::Right(Either::Right(std::future::ready(Err(Error::Unavailable(
            format!("no peer named `{}` is connected", self.name),
        )))))
    }
}
