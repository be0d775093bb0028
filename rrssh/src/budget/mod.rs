//! What a peer can make a server hold, charged to the key that caused it and to the server.
//!
//! Every rrssh connection charges three budgets, innermost first:
//!
//! | budget | default | counts | over it |
//! |---|---|---|---|
//! | the connection's, [`Limits::body_buffer`](crate::proto::Limits::body_buffer) | 64 MiB | request bodies its handlers read whole | 503 |
//! | the key's, [`Server::per_key_memory`](crate::Server::per_key_memory) | 256 MiB | the same, over all connections of one key (SSH and rrssh), and body bytes received but not yet read | 429 |
//! | the server's, [`Server::process_memory`](crate::Server::process_memory) | 1 GiB | the same, over all peers | 503 |
//!
//! and each key may have [`Server::max_calls_per_key`](crate::Server::max_calls_per_key)
//! (default 4,096) calls in flight over all its connections; one more is reset with 429.
//!
//! - **Charged when allocated**: body bytes as they arrive (before the application takes them),
//!   a body read whole (`Json`, `Bytes`, `String`, a Python handler's `body`) as its buffer
//!   grows, a small body that came with its head when the call starts.
//! - **Given back when freed**: arriving bytes once taken; a body read whole when its call is
//!   over (the handler returned and its answer was sent), whatever the handler made of it, since
//!   a `Json` value or a Python `bytes` cannot be seen.
//! - **Refused before the budget is passed**: a body that would pass one is refused with the
//!   status above and a message naming the budget and its setting; what arrived of it is
//!   dropped and its window given back, so nothing else on the connection waits for it. A
//!   relayed body is charged on the hub like any other, to the key that sent it.
//!
//! What the handler copies out of a streamed body by itself ([`Body::frame`](crate::Body::frame),
//! [`ByteStream`](crate::ByteStream)) is its own: only what rrssh buffers is charged. The
//! per-connection buffers of bounded size (the read buffer, at most one frame plus 1.25 MiB;
//! the output queue, at most 1.25 MiB; see `PROTOCOL.md`) are bounded by the number of
//! connections instead: [`Server::max_sessions`](crate::Server::max_sessions) per SSH
//! connection and [`Server::max_connections_per_key`](crate::Server::max_connections_per_key).

mod account;
mod charge;
mod keys;
mod meter;

use std::sync::Arc;

pub(crate) use self::account::{Account, CallTicket};
pub use self::account::{OverBudget, Scope, Unit};
pub(crate) use self::charge::{CallHold, Charge};
#[cfg(feature = "ssh")]
use self::keys::KeyTable;
use self::meter::Meter;

/// The default of [`Server::per_key_memory`](crate::Server::per_key_memory): 256 MiB.
pub const DEFAULT_PER_KEY_MEMORY: usize = 256 * 1024 * 1024;
/// The default of [`Server::process_memory`](crate::Server::process_memory): 1 GiB.
pub const DEFAULT_PROCESS_MEMORY: usize = 1024 * 1024 * 1024;
/// The default of [`Server::max_calls_per_key`](crate::Server::max_calls_per_key): 4,096.
pub const DEFAULT_CALLS_PER_KEY: usize = 4096;

/// One server's budgets: its own and each connected key's.
#[cfg(feature = "ssh")]
#[derive(Debug)]
pub(crate) struct Budgets {
    keys: KeyTable,
    server: Arc<Meter>,
}

#[cfg(feature = "ssh")]
impl Budgets {
    pub(crate) fn new(per_key_memory: usize, process_memory: usize, calls_per_key: usize) -> Self {
        Self {
            keys: KeyTable::new(per_key_memory, calls_per_key),
            server: Arc::new(Meter::new(process_memory)),
        }
    }

    /// What the server holds, for its handle.
    pub(crate) fn gauge(&self) -> MemoryGauge {
        MemoryGauge(self.server.clone())
    }

    /// The account of a connection of the key `fingerprint` (`None`: a peer without a key,
    /// charged to the server only).
    pub(crate) fn account(&self, fingerprint: Option<&str>) -> Account {
        Account::new(
            fingerprint.map(|f| self.keys.of(f)),
            Some(self.server.clone()),
        )
    }
}

/// How many bytes a server holds for its peers, as its budgets count them (what they charged
/// and have not given back): [`Hub::memory`](crate::Hub::memory).
#[derive(Debug, Clone)]
pub struct MemoryGauge(Arc<Meter>);

impl MemoryGauge {
    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.0.used()
    }

    /// The server's limit ([`Server::process_memory`](crate::Server::process_memory)).
    pub fn limit(&self) -> usize {
        self.0.max()
    }
}
