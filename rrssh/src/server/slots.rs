//! How many connections one key holds.

use std::sync::Arc;

use super::shared::Shared;

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
