//! Which SSH keys are the hubs of a cluster: each trusted key is bound to the hub id it may sign
//! as, read from a file in `authorized_keys` style (`ssh-ed25519 AAAA… HUB-ID` a line) or
//! `known_hosts` style (`HUB-ID ssh-ed25519 AAAA… [COMMENT]`).

use std::collections::HashMap;
use std::path::Path;

use russh::keys::PublicKey;
use russh::keys::ssh_key::public::KeyData;

/// The hubs a cluster member trusts: hub ids, each with the public keys that may sign as it
/// (one usually; two while a key is replaced). See [`Cluster::trusted_hub_keys`].
///
/// [`Cluster::trusted_hub_keys`]: super::Cluster::trusted_hub_keys
#[derive(Debug, Clone, Default)]
pub struct HubKeys {
    by_hub: HashMap<String, Vec<PublicKey>>,
}

/// A trusted-hub-keys file that cannot be used, with where and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct HubKeysError(String);

/// Whether `id` can be a hub id (letters, digits, `-` and `_`: it is part of NATS subjects).
pub(super) fn valid_hub_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl HubKeys {
    /// No hub trusted yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts `key` to sign as the hub `hub`.
    #[must_use]
    pub fn with(mut self, hub: impl Into<String>, key: PublicKey) -> Self {
        self.add(hub.into(), key);
        self
    }

    fn add(&mut self, hub: String, key: PublicKey) {
        let keys = self.by_hub.entry(hub).or_default();
        if !keys.iter().any(|k| k.key_data() == key.key_data()) {
            keys.push(key);
        }
    }

    /// Adds every hub `other` trusts.
    pub(super) fn extend(&mut self, other: Self) {
        for (hub, keys) in other.by_hub {
            for k in keys {
                self.add(hub.clone(), k);
            }
        }
    }

    /// Parses a file of hub keys: one `KEY-TYPE BASE64 HUB-ID` a line (an `authorized_keys` line
    /// whose comment is the hub id) or `HUB-ID KEY-TYPE BASE64 [COMMENT]` (a `known_hosts`
    /// line: the hub id, then the hub's `.pub` line), `#` comments and blank lines ignored. `origin` names the
    /// text in errors. A key may be listed for several hub ids, and a hub id with several keys.
    pub fn parse(text: &str, origin: &str) -> Result<Self, HubKeysError> {
        let mut keys = Self::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |why: String| HubKeysError(format!("{origin} line {}: {why}", n + 1));
            let words: Vec<&str> = line.split_whitespace().collect();
            let key_at = |i: usize| {
                let (kind, base64) = (words.get(i)?, words.get(i + 1)?);
                PublicKey::from_openssh(&format!("{kind} {base64}")).ok()
            };
            // `KEY-TYPE BASE64 HUB-ID` (authorized_keys), or `HUB-ID KEY-TYPE BASE64 [COMMENT]`
            // (known_hosts: a `.pub` line after the hub id).
            let (key, hub) = match (key_at(0), key_at(1)) {
                (Some(key), _) => {
                    let Some(hub) = words.get(2) else {
                        return Err(at(
                            "the key names no hub id: write `KEY-TYPE BASE64 HUB-ID`".into(),
                        ));
                    };
                    if let Some(extra) = words.get(3) {
                        return Err(at(format!(
                            "`{extra}` after the hub id: write `KEY-TYPE BASE64 HUB-ID`, or `HUB-ID KEY-TYPE BASE64 [COMMENT]`"
                        )));
                    }
                    (key, *hub)
                }
                (None, Some(key)) => (key, words[0]),
                (None, None) => {
                    return Err(at(
                        "no public key: expected `KEY-TYPE BASE64 HUB-ID` or `HUB-ID KEY-TYPE BASE64 [COMMENT]`".into(),
                    ));
                }
            };
            if !valid_hub_id(hub) {
                return Err(at(format!(
                    "`{hub}` is not a hub id (letters, digits, `-` and `_`)"
                )));
            }
            keys.add(hub.to_owned(), key);
        }
        Ok(keys)
    }

    /// Reads and parses a file of hub keys (see [`HubKeys::parse`]).
    pub fn read(path: impl AsRef<Path>) -> Result<Self, HubKeysError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| HubKeysError(format!("{}: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// How many hub ids are trusted.
    pub fn len(&self) -> usize {
        self.by_hub.len()
    }

    /// Whether no hub is trusted.
    pub fn is_empty(&self) -> bool {
        self.by_hub.is_empty()
    }

    /// The keys that may sign as `hub`.
    pub(super) fn keys_of(&self, hub: &str) -> &[PublicKey] {
        self.by_hub.get(hub).map_or(&[], Vec::as_slice)
    }

    /// The hub ids `key` may sign as (for telling a key of another hub from an unknown one).
    pub(super) fn hubs_of(&self, key: &KeyData) -> Vec<&str> {
        let mut hubs: Vec<&str> = self
            .by_hub
            .iter()
            .filter(|(_, keys)| keys.iter().any(|k| k.key_data() == key))
            .map(|(h, _)| h.as_str())
            .collect();
        hubs.sort_unstable();
        hubs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::{Algorithm, PrivateKey};

    fn key() -> PublicKey {
        PrivateKey::random(&mut russh::keys::key::safe_rng(), Algorithm::Ed25519)
            .unwrap()
            .public_key()
            .clone()
    }

    #[test]
    fn parses_lines_and_says_what_is_wrong() {
        let (a, b) = (key(), key());
        let text = format!(
            "# hubs\n\n{} hub-a\nhub-b {} root@b\n  {} hub-b\n",
            a.to_openssh().unwrap(),
            b.to_openssh().unwrap(),
            a.to_openssh().unwrap()
        );
        let keys = HubKeys::parse(&text, "hubs").unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.keys_of("hub-a").len(), 1);
        assert_eq!(keys.keys_of("hub-b").len(), 2);
        assert_eq!(keys.hubs_of(a.key_data()), vec!["hub-a", "hub-b"]);
        assert!(keys.keys_of("hub-c").is_empty());

        let bare = a.to_openssh().unwrap();
        let no_id = HubKeys::parse(&format!("\n{bare}\n"), "hubs").unwrap_err();
        assert!(
            no_id
                .to_string()
                .contains("hubs line 2: the key names no hub id")
        );
        let bad_id = HubKeys::parse(&format!("{bare} a.b"), "f").unwrap_err();
        assert!(
            bad_id.to_string().contains("`a.b` is not a hub id"),
            "{bad_id}"
        );
        let bad_key = HubKeys::parse("ssh-ed25519 AAAA hub-a", "f").unwrap_err();
        assert!(
            bad_key.to_string().contains("f line 1: no public key"),
            "{bad_key}"
        );
        let bad_id = HubKeys::parse(&format!("a.b {bare} comment"), "f").unwrap_err();
        assert!(
            bad_id.to_string().contains("`a.b` is not a hub id"),
            "{bad_id}"
        );
        let extra = HubKeys::parse(&format!("{bare} hub-a more"), "f").unwrap_err();
        assert!(extra.to_string().contains("`more` after the hub id"));
        assert!(HubKeys::parse("one", "f").is_err());
    }
}
