//! Which hub holds which service: a JetStream key-value bucket every hub writes its own names
//! to and watches for the others'. A name's entry (`n.NAME`) is written when it changes; each
//! hub's liveness (`h.HUB`) is written every third of the TTL, so the write load is one key per
//! hub per heartbeat however many services it holds. A name counts only while its hub is alive.

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

/// A service name as a bucket key (`n.NAME`): keys allow `[-/_=.a-zA-Z0-9]`, so the only
/// character of a name they lack, `:`, becomes `=` (which no name contains).
pub(super) fn key_of(name: &str) -> String {
    format!("n.{}", name.replace(':', "="))
}

/// The NATS subject of a bucket key (what an entry's signature binds it to).
pub(super) fn kv_subject(key: &str) -> String {
    format!("$KV.{BUCKET}.{key}")
}

/// A hub's liveness key.
pub(super) fn hub_key(hub: &str) -> String {
    format!("h.{hub}")
}

/// What a bucket key names.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Key {
    Name(String),
    Hub(String),
    Other,
}

pub(super) fn parse_key(key: &str) -> Key {
    if let Some(n) = key.strip_prefix("n.") {
        Key::Name(n.replace('=', ":"))
    } else if let Some(h) = key.strip_prefix("h.") {
        Key::Hub(h.to_owned())
    } else {
        Key::Other
    }
}

/// The bucket's configuration: one value per key, in memory (presence is rebuilt by the hubs
/// after a NATS restart).
pub(super) fn bucket() -> async_nats::jetstream::kv::Config {
    async_nats::jetstream::kv::Config {
        bucket: BUCKET.to_owned(),
        history: 1,
        storage: async_nats::jetstream::stream::StorageType::Memory,
        ..Default::default()
    }
}

/// A hub not heard from for this many TTLs has its names deleted from the bucket by whoever
/// notices (they were already ignored after one TTL).
pub(super) const SWEEP_AFTER_TTLS: u32 = 10;

/// How long after its last heartbeat a hub's names stop counting.
pub(super) fn alive(last: std::time::Instant, ttl: Duration) -> bool {
    last.elapsed() < ttl
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_keys() {
        for n in ["billing", "sensor-7", "eu:billing.v2"] {
            assert_eq!(parse_key(&key_of(n)), Key::Name(n.to_owned()));
        }
        assert_eq!(key_of("eu:billing"), "n.eu=billing");
        assert_eq!(parse_key(&hub_key("a-1")), Key::Hub("a-1".into()));
        assert_eq!(parse_key("x"), Key::Other);
    }
}
