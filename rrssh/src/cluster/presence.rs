//! Which hub holds which service: a JetStream key-value bucket every hub writes its own names
//! to (refreshed by heartbeats) and watches for the others'.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The bucket's name.
pub(super) const BUCKET: &str = "rrssh_presence";

/// One name's entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Presence {
    /// The hub holding the name.
    pub(super) hub: String,
    /// The key that registered it.
    pub(super) fingerprint: String,
    /// The user it logged in as.
    pub(super) user: String,
    /// When the session began, in milliseconds since the epoch (newest wins).
    pub(super) since: u64,
}

/// Milliseconds since the epoch.
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A service name as a bucket key: keys allow `[-/_=.a-zA-Z0-9]`, so the only character of a
/// name they lack, `:`, becomes `=` (which no name contains).
pub(super) fn key_of(name: &str) -> String {
    name.replace(':', "=")
}

/// The service name of a bucket key.
pub(super) fn name_of(key: &str) -> String {
    key.replace('=', ":")
}

/// The bucket's configuration: one value per key, kept `ttl` at most (heartbeats refresh it).
pub(super) fn bucket(ttl: Duration) -> async_nats::jetstream::kv::Config {
    async_nats::jetstream::kv::Config {
        bucket: BUCKET.to_owned(),
        history: 1,
        max_age: ttl,
        storage: async_nats::jetstream::stream::StorageType::Memory,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_keys() {
        for n in ["billing", "sensor-7", "eu:billing.v2"] {
            assert_eq!(name_of(&key_of(n)), n);
        }
        assert_eq!(key_of("eu:billing"), "eu=billing");
    }
}
