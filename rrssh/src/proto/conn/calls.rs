//! The call table: one entry per call in flight, with the state of each direction.

use std::collections::HashMap;

use super::flow::{RecvWindow, SendWindow};

/// One call in flight.
#[derive(Debug)]
pub(super) struct Call {
    /// We started it (our id parity).
    pub(super) local: bool,
    /// We may still send frames for it.
    pub(super) send_open: bool,
    /// The peer may still send body frames for it.
    pub(super) recv_open: bool,
    /// For a call we made: the RESPONSE arrived. For a served call: the REQUEST (always).
    pub(super) head_received: bool,
    /// For a served call: our RESPONSE went out. For a call we made: the REQUEST (always).
    pub(super) head_sent: bool,
    pub(super) send: SendWindow,
    pub(super) recv: RecvWindow,
}

/// The calls in flight, and how many of them the peer started.
#[derive(Debug, Default)]
pub(super) struct Calls {
    map: HashMap<u32, Call>,
    /// Calls the peer started that are still in the table.
    served: usize,
}

impl Calls {
    pub(super) fn get_mut(&mut self, id: u32) -> Option<&mut Call> {
        self.map.get_mut(&id)
    }

    pub(super) fn get(&self, id: u32) -> Option<&Call> {
        self.map.get(&id)
    }

    pub(super) fn contains(&self, id: u32) -> bool {
        self.map.contains_key(&id)
    }

    pub(super) fn insert(&mut self, id: u32, call: Call) {
        if !call.local {
            self.served += 1;
        }
        if let Some(old) = self.map.insert(id, call)
            && !old.local
        {
            self.served -= 1;
        }
    }

    pub(super) fn remove(&mut self, id: u32) -> Option<Call> {
        let c = self.map.remove(&id)?;
        if !c.local {
            self.served -= 1;
        }
        Some(c)
    }

    /// Removes the call if both directions are done.
    pub(super) fn remove_if_done(&mut self, id: u32) {
        if self
            .map
            .get(&id)
            .is_some_and(|c| !c.send_open && !c.recv_open)
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

    pub(super) fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.map.keys().copied()
    }
}
