//! What every SSH connection of one server shares: its router, keys, limits and registry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use crate::Router;
use crate::hub::Registry;
use crate::proto::Limits;

/// The server's settings and counters, shared by its connections.
pub(super) struct Shared {
    pub(super) router: Option<Router>,
    /// Who may log in (replaced whole by a reload).
    pub(super) access: super::access::Current,
    /// A per-user `authorized_keys` path with `%u` for the user name.
    pub(super) user_keys: Option<String>,
    pub(super) max_sessions: usize,
    pub(super) max_tunnels: usize,
    pub(super) max_listeners: usize,
    pub(super) registry: Registry,
    pub(super) limits: Limits,
    pub(super) next_conn: AtomicU64,
    pub(super) max_per_key: usize,
    /// Open rrssh connections per key fingerprint.
    pub(super) per_key: Mutex<HashMap<String, usize>>,
    /// What each key, and all together, may make the server hold.
    pub(super) budgets: crate::budget::Budgets,
    pub(super) permit_open: crate::tunnel::PermitOpen,
    pub(super) permit_listen: crate::tunnel::PermitOpen,
    /// What runs on session channels besides rrssh (terminals).
    pub(super) programs: Option<std::sync::Arc<dyn crate::terminal::programs::SessionPrograms>>,
    /// Who is told what happens (none: nothing is made to tell them).
    pub(super) observers: Option<crate::observe::Observers>,
}
