//! What one peer's connection is charged to: its own budget, its key's, and the server's.

use std::fmt;
use std::sync::Arc;

use super::keys::KeyMeters;
use super::meter::Meter;

/// The budget a charge would have passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scope {
    /// One rrssh connection's handlers ([`Limits::body_buffer`](crate::proto::Limits::body_buffer)).
    Connection,
    /// One key, over all its connections
    /// ([`Server::per_key_memory`](crate::Server::per_key_memory),
    /// [`Server::max_calls_per_key`](crate::Server::max_calls_per_key)).
    Key,
    /// The whole server, over all its peers
    /// ([`Server::process_memory`](crate::Server::process_memory)).
    Server,
}

/// What a budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unit {
    /// Bytes a peer made the server hold.
    Bytes,
    /// Calls in flight.
    Calls,
}

/// A peer asked the server to hold more than one of its budgets allows; nothing of it was
/// kept. A key over its own budget is answered 429, a connection or server over its own 503.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OverBudget {
    /// Which budget.
    pub scope: Scope,
    /// What it counts.
    pub unit: Unit,
    /// How much it holds.
    pub held: usize,
    /// How much more was asked for.
    pub more: usize,
    /// Its limit.
    pub limit: usize,
}

impl OverBudget {
    /// The status a call refused for this is answered with: 429 for a key over its share, 503
    /// for a connection or the server over theirs.
    pub fn status(&self) -> http::StatusCode {
        match self.scope {
            Scope::Key => http::StatusCode::TOO_MANY_REQUESTS,
            Scope::Connection | Scope::Server => http::StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A short name of what was spent, for metrics and logs: `connection-memory`,
    /// `key-memory`, `calls-per-key`, `process-memory`.
    pub fn reason(&self) -> &'static str {
        match (self.scope, self.unit) {
            (Scope::Connection, _) => "connection-memory",
            (Scope::Key, Unit::Bytes) => "key-memory",
            (Scope::Key, Unit::Calls) => "calls-per-key",
            (Scope::Server, _) => "process-memory",
        }
    }
}

impl fmt::Display for OverBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (who, setting) = match (self.scope, self.unit) {
            (Scope::Connection, _) => ("this connection's handlers hold", "Limits::body_buffer"),
            (Scope::Key, Unit::Bytes) => ("this key holds", "Server::per_key_memory"),
            (Scope::Key, Unit::Calls) => ("this key has", "Server::max_calls_per_key"),
            (Scope::Server, _) => ("the server holds", "Server::process_memory"),
        };
        match self.unit {
            Unit::Bytes => write!(
                f,
                "{who} {} bytes of request bodies; {} more would pass its limit of {} ({setting}); try again later",
                self.held, self.more, self.limit
            ),
            Unit::Calls => write!(
                f,
                "{who} {} calls in flight over all its connections, its limit ({setting}); try again later",
                self.held
            ),
        }
    }
}

impl std::error::Error for OverBudget {}

/// The budgets one rrssh connection charges, innermost first; a missing one is unbounded.
#[derive(Clone, Default)]
pub(crate) struct Account {
    connection: Option<Arc<Meter>>,
    key: Option<Arc<KeyMeters>>,
    server: Option<Arc<Meter>>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("connection", &self.connection.as_ref().map(|m| m.used()))
            .field("key", &self.key.as_ref().map(|k| k.memory.used()))
            .field("server", &self.server.as_ref().map(|m| m.used()))
            .finish()
    }
}

impl Account {
    /// Charged to `key` and `server`.
    #[cfg(any(feature = "ssh", test))]
    pub(crate) fn new(key: Option<Arc<KeyMeters>>, server: Option<Arc<Meter>>) -> Self {
        Self {
            connection: None,
            key,
            server,
        }
    }

    /// The same, with a connection's own budget of `max` bytes inside it.
    pub(crate) fn with_connection(mut self, max: usize) -> Self {
        self.connection = Some(Arc::new(Meter::new(max)));
        self
    }

    /// The same without the connection's own budget, which counts only bodies read whole.
    pub(crate) fn without_connection(&self) -> Self {
        Self {
            connection: None,
            ..self.clone()
        }
    }

    fn meters(&self) -> [(Scope, Option<&Meter>); 3] {
        [
            (Scope::Connection, self.connection.as_deref()),
            (Scope::Key, self.key.as_deref().map(|k| &k.memory)),
            (Scope::Server, self.server.as_deref()),
        ]
    }

    /// Takes `n` bytes from every budget, or from none.
    pub(crate) fn take(&self, n: usize) -> Result<(), OverBudget> {
        if n == 0 {
            return Ok(());
        }
        let meters = self.meters();
        for (i, (scope, meter)) in meters.iter().enumerate() {
            let Some(m) = meter else { continue };
            if let Err(held) = m.take(n) {
                for (_, taken) in &meters[..i] {
                    if let Some(t) = taken {
                        t.give_back(n);
                    }
                }
                return Err(OverBudget {
                    scope: *scope,
                    unit: Unit::Bytes,
                    held,
                    more: n,
                    limit: m.max(),
                });
            }
        }
        Ok(())
    }

    /// Gives back `n` bytes taken with [`take`](Self::take).
    pub(crate) fn give_back(&self, n: usize) {
        if n == 0 {
            return;
        }
        for (_, m) in self.meters() {
            if let Some(m) = m {
                m.give_back(n);
            }
        }
    }

    /// Takes one of the key's call slots, held until the ticket is dropped.
    pub(crate) fn take_call(&self) -> Result<Option<CallTicket>, OverBudget> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        key.calls.take(1).map_err(|held| OverBudget {
            scope: Scope::Key,
            unit: Unit::Calls,
            held,
            more: 1,
            limit: key.calls.max(),
        })?;
        Ok(Some(CallTicket(key.clone())))
    }
}

/// One of a key's calls in flight; given back when dropped.
pub(crate) struct CallTicket(Arc<KeyMeters>);

impl Drop for CallTicket {
    fn drop(&mut self) {
        self.0.calls.give_back(1);
    }
}

impl fmt::Debug for CallTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallTicket")
    }
}
