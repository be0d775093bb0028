//! Remote hub events: `STREAM /.well-known/rrssh/events` delivers who connects, leaves and is
//! refused, as it happens, to callers of a hub with caller access
//! ([`Server::relay`](crate::Server::relay)), as REST Reverse SSH publishes its connection
//! events. A caller sees the events of the peers it may call (the scope `call:NAME`, as for the
//! listing); peers without a name (other callers) are not shown.
//!
//! Each watcher reads from the hub's event channel (1,024 events, shared); a watcher that falls
//! that far behind gets a `lagged` event saying how many it missed, then the events from there.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::{HubEvent, Registry};
use crate::response::JsonStream;
use crate::routing::MethodRouter;
use crate::{Peer, Router};

/// The path of the event stream.
pub const EVENTS_PATH: &str = "/.well-known/rrssh/events";

/// One event of the stream, as JSON: `{"event": "connected", "name": …, …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum WatchEvent {
    /// A peer connected and registered `name`.
    Connected {
        /// The service name.
        name: String,
        /// The SSH user it logged in as.
        user: String,
        /// Its key's fingerprint.
        fingerprint: String,
        /// When, in seconds since the Unix epoch.
        at: u64,
    },
    /// A peer left.
    Disconnected {
        /// The service name.
        name: String,
        /// Its key's fingerprint.
        fingerprint: String,
        /// Why.
        reason: String,
        /// When, in seconds since the Unix epoch.
        at: u64,
    },
    /// A key tried to register `name`, which is not its to take.
    Refused {
        /// The name asked for.
        name: String,
        /// The key's fingerprint.
        fingerprint: String,
        /// When, in seconds since the Unix epoch.
        at: u64,
    },
    /// This watcher fell behind and missed events.
    Lagged {
        /// How many.
        missed: u64,
    },
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The event as `caller` may see it.
fn visible(event: HubEvent, caller: &Peer) -> Option<WatchEvent> {
    let may = |name: &str| caller.has_scope(&format!("call:{name}"));
    match event {
        HubEvent::Connected {
            name: Some(name),
            peer,
        } if may(&name) => Some(WatchEvent::Connected {
            name,
            user: peer.user().to_owned(),
            fingerprint: peer.fingerprint().to_owned(),
            at: now(),
        }),
        HubEvent::Disconnected {
            name: Some(name),
            peer,
            reason,
        } if may(&name) => Some(WatchEvent::Disconnected {
            name,
            fingerprint: peer.fingerprint().to_owned(),
            reason,
            at: now(),
        }),
        HubEvent::Refused { name, peer } if may(&name) => Some(WatchEvent::Refused {
            name,
            fingerprint: peer.fingerprint().to_owned(),
            at: now(),
        }),
        _ => None,
    }
}

/// The event stream's route for `registry`.
pub(crate) fn watch_router(registry: Registry) -> Router {
    let watch = move |caller: Peer| {
        let rx = registry.subscribe();
        async move {
            let items = futures_util::stream::unfold((rx, caller), |(mut rx, caller)| async move {
                loop {
                    match rx.recv().await {
                        Ok(e) => {
                            if let Some(v) = visible(e, &caller) {
                                return Some((v, (rx, caller)));
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            return Some((WatchEvent::Lagged { missed }, (rx, caller)));
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            });
            JsonStream::new(items)
        }
    };
    let mut route = MethodRouter::new();
    route = route.on(crate::method::STREAM.clone(), watch);
    Router::new().introspection(false).route(EVENTS_PATH, route)
}
