//! What every SSH connection of one server shares: its router, keys, limits and registry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use crate::Router;
use crate::hub::Registry;
use crate::keys::AuthorizedKeys;
use crate::proto::Limits;

/// The server's settings and counters, shared by its connections.
pub(super) struct Shared {
    pub(super) router: Option<Router>,
    pub(super) authorized: AuthorizedKeys,
    /// A per-user `authorized_keys` path with `%u` for the user name.
    pub(super) user_keys: Option<String>,
    /// Whether certificates may log in: a `cert-authority` line, or per-user files that may
    /// hold one (decided once, at bind, not at every offered key).
    pub(super) takes_certificates: bool,
    /// Revoked keys and certificates (`RevokedKeys`), checked at every login.
    pub(super) revoked: Option<std::sync::Arc<crate::keys::RevokedKeys>>,
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
}
