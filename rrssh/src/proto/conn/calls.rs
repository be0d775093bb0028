//! The call table: one entry per call in flight, with the state of each direction.

use std::collections::HashMap;

use super::flow::{RecvWindow, SendWindow};
use crate::proto::CallId;

/// Who started a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// We did (our id parity): a call we made.
    Local,
    /// The peer did: a call we serve.
    Peer,
}

/// Where one direction of a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Half {
    /// Its head has not gone yet (for a call we made, the RESPONSE we wait for; for a
    /// served call, the RESPONSE we owe).
    Head,
    /// The head went; body frames may follow.
    Body,
    /// Its last frame went (`END`, or `RESET`).
    Closed,
}

/// One call in flight: each direction's state and window.
#[derive(Debug)]
pub(super) struct Call {
    pub(super) origin: Origin,
    /// What we send: the request body of a call we made, the answer of a served one.
    pub(super) send: Half,
    /// What the peer sends.
    pub(super) recv: Half,
    pub(super) send_window: SendWindow,
    pub(super) recv_window: RecvWindow,
}

/// The calls in flight, and how many of them the peer started.
#[derive(Debug, Default)]
pub(super) struct Calls {
    map: HashMap<CallId, Call>,
    /// Calls the peer started that are still in the table.
    served: usize,
}

impl Calls {
    pub(super) fn get_mut(&mut self, id: CallId) -> Option<&mut Call> {
        self.map.get_mut(&id)
    }

    pub(super) fn get(&self, id: CallId) -> Option<&Call> {
        self.map.get(&id)
    }

    pub(super) fn contains(&self, id: CallId) -> bool {
        self.map.contains_key(&id)
    }

    pub(super) fn insert(&mut self, id: CallId, call: Call) {
        if call.origin == Origin::Peer {
            self.served += 1;
        }
        if let Some(old) = self.map.insert(id, call)
            && old.origin == Origin::Peer
        {
            self.served -= 1;
        }
    }

    pub(super) fn remove(&mut self, id: CallId) -> Option<Call> {
        let c = self.map.remove(&id)?;
        if c.origin == Origin::Peer {
            self.served -= 1;
        }
        Some(c)
    }

    /// Removes the call if both directions are done.
    pub(super) fn remove_if_done(&mut self, id: CallId) {
        if self
            .map
            .get(&id)
            .is_some_and(|c| c.send == Half::Closed && c.recv == Half::Closed)
        {
            self.remove(id);
        }
    }

    pub(super) fn served(&self) -> usize {
        self.served
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    pub(super) fn clear(&mut self) {
        self.map.clear();
        self.served = 0;
    }

    pub(super) fn ids(&self) -> impl Iterator<Item = CallId> + '_ {
        self.map.keys().copied()
    }
}
