//! Connection limits: how many are still in the handshake, and how many one key holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::shared::Shared;

/// Counts a connection as unauthenticated until dropped.
pub(super) struct Pending {
    pub(super) counter: Arc<AtomicUsize>,
    pub(super) count: usize,
}

impl Pending {
    pub(super) fn enter(counter: &Arc<AtomicUsize>) -> Self {
        let count = counter.fetch_add(1, Ordering::AcqRel) + 1;
        Self {
            counter: counter.clone(),
            count,
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Unauthenticated connections per source address.
pub(super) type PerSource =
    Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>;

/// Counts a connection against its source address until dropped.
pub(super) struct PendingSource {
    map: PerSource,
    addr: std::net::IpAddr,
}

impl PendingSource {
    /// Enters `addr`; `Err` with the count if it already holds `max`.
    pub(super) fn enter(
        map: &PerSource,
        addr: std::net::IpAddr,
        max: usize,
    ) -> Result<Self, usize> {
        let mut m = map.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(addr).or_insert(0);
        if *n >= max {
            return Err(*n);
        }
        *n += 1;
        Ok(Self {
            map: map.clone(),
            addr,
        })
    }
}

impl Drop for PendingSource {
    fn drop(&mut self) {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.addr);
            }
        }
    }
}

/// Holds one of a key's connection slots until dropped.
pub(super) struct KeySlot {
    pub(super) shared: Arc<Shared>,
    pub(super) fingerprint: String,
}

impl KeySlot {
    /// Takes a slot, or says how many the key already holds.
    pub(super) fn take(shared: &Arc<Shared>, fingerprint: &str) -> Result<Self, usize> {
        let mut map = shared.per_key.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(fingerprint.to_owned()).or_insert(0);
        if *n >= shared.max_per_key {
            return Err(*n);
        }
        *n += 1;
        Ok(Self {
            shared: shared.clone(),
            fingerprint: fingerprint.to_owned(),
        })
    }
}

impl Drop for KeySlot {
    fn drop(&mut self) {
        let mut map = self
            .shared
            .per_key
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.fingerprint) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.fingerprint);
            }
        }
    }
}
