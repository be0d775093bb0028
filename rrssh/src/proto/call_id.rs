//! Call ids: which side started a call is in the id itself (`PROTOCOL.md` §4).

use std::fmt;

use super::conn::Role;

/// A call's id on one connection: odd for calls the initiator started, even for the
/// acceptor's, and 0 for the connection itself (`HELLO`, `PING`, `GOAWAY`, a connection
/// `WINDOW`). Ids only increase, so one is never reused on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CallId(u32);

impl CallId {
    /// Call 0: frames for the connection as a whole.
    pub const CONNECTION: CallId = CallId(0);

    /// The id with this number on the wire.
    pub const fn new(id: u32) -> Self {
        Self(id)
    }

    /// The number on the wire.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// Whether this is call 0, the connection.
    pub const fn is_connection(self) -> bool {
        self.0 == 0
    }

    /// Which side starts calls with this id (`None` for call 0).
    pub const fn started_by(self) -> Option<Role> {
        match self.0 {
            0 => None,
            n if n % 2 == 1 => Some(Role::Initiator),
            _ => Some(Role::Acceptor),
        }
    }

    /// The first id a side numbers its calls with.
    pub const fn first(role: Role) -> Self {
        match role {
            Role::Initiator => Self(1),
            Role::Acceptor => Self(2),
        }
    }

    /// The id the same side uses next (ids go up by 2; `None` once they run out).
    pub const fn next(self) -> Option<Self> {
        match self.0.checked_add(2) {
            Some(n) => Some(Self(n)),
            None => None,
        }
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<CallId> for u32 {
    fn from(id: CallId) -> u32 {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parity_says_who_started_it() {
        assert_eq!(CallId::CONNECTION.started_by(), None);
        assert_eq!(CallId::new(1).started_by(), Some(Role::Initiator));
        assert_eq!(CallId::new(2).started_by(), Some(Role::Acceptor));
        assert_eq!(CallId::new(u32::MAX).started_by(), Some(Role::Initiator));
        assert_eq!(CallId::first(Role::Acceptor).next(), Some(CallId::new(4)));
        assert_eq!(CallId::new(u32::MAX).next(), None, "ids never wrap around");
    }
}
