//! Each key's budgets, shared by all its connections and forgotten with the last of them.

use std::collections::HashMap;
#[cfg(any(feature = "ssh", test))]
use std::sync::Arc;
use std::sync::{Mutex, Weak};

use super::meter::Meter;

/// What one key holds, over all its connections.
#[derive(Debug)]
pub(crate) struct KeyMeters {
    pub(crate) memory: Meter,
    pub(crate) calls: Meter,
    fingerprint: String,
    table: Weak<Mutex<Entries>>,
}

type Entries = HashMap<String, Weak<KeyMeters>>;

impl Drop for KeyMeters {
    fn drop(&mut self) {
        let Some(table) = self.table.upgrade() else {
            return;
        };
        let removed = {
            let mut map = table.lock().unwrap_or_else(|e| e.into_inner());
            // A new entry for the same key may already stand in its place.
            match map.get(&self.fingerprint) {
                Some(w) if w.strong_count() == 0 => map.remove(&self.fingerprint),
                _ => None,
            }
        };
        drop(removed);
    }
}

/// The keys connected to one server, each with its budgets.
#[cfg(any(feature = "ssh", test))]
#[derive(Debug)]
pub(crate) struct KeyTable {
    entries: Arc<Mutex<Entries>>,
    memory: usize,
    calls: usize,
}

#[cfg(any(feature = "ssh", test))]
impl KeyTable {
    /// Each key may hold `memory` bytes and `calls` calls in flight.
    pub(crate) fn new(memory: usize, calls: usize) -> Self {
        Self {
            entries: Arc::default(),
            memory,
            calls,
        }
    }

    /// The budgets of the key `fingerprint`, made when its first connection comes.
    pub(crate) fn of(&self, fingerprint: &str) -> Arc<KeyMeters> {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(live) = map.get(fingerprint).and_then(Weak::upgrade) {
            return live;
        }
        let meters = Arc::new(KeyMeters {
            memory: Meter::new(self.memory),
            calls: Meter::new(self.calls),
            fingerprint: fingerprint.to_owned(),
            table: Arc::downgrade(&self.entries),
        });
        // A dead entry it replaces holds nothing.
        map.insert(fingerprint.to_owned(), Arc::downgrade(&meters));
        meters
    }

    /// How many keys hold budgets now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.lock().map_or(0, |m| m.len())
    }
}

#[cfg(test)]
mod tests {
    use super::KeyTable;

    #[test]
    fn one_budget_per_key_forgotten_with_its_last_holder() {
        let t = KeyTable::new(100, 2);
        let a = t.of("SHA256:a");
        let a2 = t.of("SHA256:a");
        a.memory.take(60).unwrap();
        assert_eq!(
            a2.memory.take(60),
            Err(60),
            "shared by the key's connections"
        );
        let b = t.of("SHA256:b");
        b.memory.take(60).unwrap();
        assert_eq!(t.len(), 2);
        a.memory.give_back(60);
        drop((a, a2));
        assert_eq!(t.len(), 1);
        b.memory.give_back(60);
        drop(b);
        assert_eq!(t.len(), 0);
        assert_eq!(
            t.of("SHA256:a").memory.used(),
            0,
            "a key that comes back starts anew"
        );
    }
}
