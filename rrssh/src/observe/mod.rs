//! What a server tells those who watch it (metrics, an audit log): logins accepted and
//! refused, calls answered, tunnels and terminal sessions opened, closed or refused, and calls
//! refused by a budget. Give an [`Observer`] to [`Server::observe`](crate::Server::observe); connections
//! coming and going are the hub's [`events`](crate::Hub::events).
//!
//! Observers are called on the connection's own task, with nothing locked: they must be quick
//! and must not block (count, or queue a line for a writer, as
//! [`Metrics`](crate::metrics::Metrics) and [`AuditLog`](crate::audit::AuditLog) do).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::Peer;

/// Something that happened on a server (see the [module docs](self)).
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A key or certificate was offered and verified, then let in or refused.
    Login {
        /// The user name asked for.
        user: &'a str,
        /// The key's fingerprint (`SHA256:…`).
        fingerprint: &'a str,
        /// A certificate's key id, if one was used.
        certificate: Option<&'a str>,
        /// Where from.
        remote: Option<SocketAddr>,
        /// How the connection came: `ssh`, `websocket`, `ssh on the web port`.
        carrier: &'static str,
        /// `None` if let in, else why not.
        refused: Option<&'a str>,
    },
    /// A call was answered (its head sent, or reset before it).
    Call {
        /// Who called.
        peer: Option<&'a Peer>,
        /// The method.
        method: &'a http::Method,
        /// The route's template (`/users/{id}`), or `unmatched`: never the raw path, so a
        /// peer cannot make up new values.
        route: &'a str,
        /// The status of the answer.
        status: u16,
        /// From the call's start to the end of its answer.
        duration: Duration,
        /// The request body's bytes, when it came whole with its head.
        request_bytes: u64,
        /// The answer body's bytes sent.
        response_bytes: u64,
    },
    /// A call was refused before its handler ran, with why (`key-memory`, `calls-per-key`,
    /// `process-memory`, `connection-memory`).
    Refused {
        /// Who called.
        peer: Option<&'a Peer>,
        /// What was spent.
        reason: &'static str,
        /// The status it got.
        status: u16,
    },
    /// A TCP tunnel (`-L`) was opened or refused.
    Tunnel {
        /// Who asked.
        peer: &'a Peer,
        /// `HOST:PORT`.
        target: &'a str,
        /// `None` if opened, else why not.
        refused: Option<&'a str>,
    },
    /// A terminal session or command (`rrssh shell`, `ssh -t`, `ssh host CMD`) was opened,
    /// ended, or refused.
    Terminal {
        /// Who asked.
        peer: &'a Peer,
        /// The command run (a forced one if the key has one); `None`: the login shell.
        command: Option<&'a str>,
        /// `None` while it runs (the event of its start), else how long it ran (its end).
        ended: Option<Duration>,
        /// `None` if it ran, else why not.
        refused: Option<&'a str>,
    },
}

/// Watches a server's [`Event`]s.
pub trait Observer: Send + Sync + 'static {
    /// Called once per event, quickly, without blocking.
    fn event(&self, event: &Event<'_>);
}

/// The observers of one server, put into the extensions of its connections' calls.
#[derive(Clone, Default)]
pub(crate) struct Observers(Arc<Vec<Arc<dyn Observer>>>);

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observers")
            .field("count", &self.0.len())
            .finish()
    }
}

impl Observers {
    #[cfg_attr(not(feature = "ssh"), allow(dead_code))]
    pub(crate) fn new(list: Vec<Arc<dyn Observer>>) -> Option<Self> {
        (!list.is_empty()).then(|| Self(Arc::new(list)))
    }

    pub(crate) fn emit(&self, event: &Event<'_>) {
        for o in self.0.iter() {
            o.event(event);
        }
    }
}

/// The template of the route a response answered, which the router puts in its extensions.
#[derive(Debug, Clone)]
pub(crate) struct MatchedRoute(pub(crate) Arc<str>);

/// The name of [`Event::Call`]'s route when no route matched.
pub const UNMATCHED: &str = "unmatched";
