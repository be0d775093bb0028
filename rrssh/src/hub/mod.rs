//! The registry of connected peers on a serving end (the hub in reverse mode): who is
//! connected, under which service name, and a client to call each of them.

mod handle;
pub mod relay;

pub use self::handle::Hub;

use std::collections::HashMap;
use std::fmt;
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
    /// When it connected.
    pub connected_at: SystemTime,
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
}

#[derive(Default)]
struct State {
    by_id: HashMap<u64, Entry>,
    /// Name → (owner key fingerprint, current connection id).
    names: HashMap<String, (String, u64)>,
}

/// The registry; cheap to clone.
#[derive(Clone)]
pub struct Registry {
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<HubEvent>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            state: Arc::default(),
            events: broadcast::channel(1024).0,
        }
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
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a connection. A name is owned by the first key that registers it; the same
    /// key registering it again replaces the older session (newest wins), another key is
    /// refused (`Err`).
    pub(crate) fn register(
        &self,
        id: u64,
        name: Option<String>,
        peer: Peer,
        conn: Connection,
    ) -> Result<(), String> {
        let replaced = {
            let mut st = self.lock();
            let mut replaced = None;
            if let Some(n) = &name {
                if !peer.may_serve(n) {
                    drop(st);
                    tracing::warn!(name = %n, fingerprint = %peer.fingerprint(), "refused: the key may not register this name (rrssh-services)");
                    let _ = self.events.send(HubEvent::Refused {
                        name: n.clone(),
                        peer: peer.clone(),
                    });
                    return Err(format!(
                        "key {} may not register the service name `{n}` (its rrssh-services option does not list it)",
                        peer.fingerprint()
                    ));
                }
                match st.names.get(n) {
                    Some((owner, _)) if owner != peer.fingerprint() => {
                        drop(st);
                        tracing::warn!(name = %n, fingerprint = %peer.fingerprint(), "refused: the name belongs to another key");
                        let _ = self.events.send(HubEvent::Refused {
                            name: n.clone(),
                            peer,
                        });
                        return Err(format!("the service name `{n}` belongs to another key"));
                    }
                    Some((_, old)) => replaced = Some(*old),
                    None => {}
                }
                st.names
                    .insert(n.clone(), (peer.fingerprint().to_owned(), id));
            }
            st.by_id.insert(
                id,
                Entry {
                    name: name.clone(),
                    peer: peer.clone(),
                    conn,
                    connected_at: SystemTime::now(),
                },
            );
            replaced.and_then(|old| st.by_id.get(&old).map(|e| e.conn.clone()))
        };
        if let Some(old) = replaced {
            old.close("replaced by a newer session of the same name");
        }
        tracing::info!(name = ?name, user = %peer.user(), fingerprint = %peer.fingerprint(), "peer connected");
        let _ = self.events.send(HubEvent::Connected { name, peer });
        Ok(())
    }

    /// Forgets a connection.
    pub(crate) fn unregister(&self, id: u64, reason: String) {
        let entry = {
            let mut st = self.lock();
            let entry = st.by_id.remove(&id);
            if let Some(Entry { name: Some(n), .. }) = &entry
                && st.names.get(n).is_some_and(|(_, cur)| *cur == id)
            {
                // Keep ownership with the key; only the session goes.
                if let Some(slot) = st.names.get_mut(n) {
                    slot.1 = 0;
                }
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
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
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

    fn connection_of(&self, name: &str) -> Option<Connection> {
        let st = self.lock();
        let (_, id) = st.names.get(name)?;
        st.by_id.get(id).map(|e| e.conn.clone())
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
    /// Whether the peer is connected now.
    pub fn is_connected(&self) -> bool {
        self.registry.connection_of(&self.name).is_some()
    }
}

impl Service<Request> for PeerClient {
    type Response = Response;
    type Error = Error;
    type Future =
        futures_util::future::Either<ResponseFuture, std::future::Ready<Result<Response, Error>>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        match self.registry.connection_of(&self.name) {
            Some(mut conn) => futures_util::future::Either::Left(conn.call(req)),
            None => futures_util::future::Either::Right(std::future::ready(Err(
                Error::Unavailable(format!("no peer named `{}` is connected", self.name)),
            ))),
        }
    }
}
