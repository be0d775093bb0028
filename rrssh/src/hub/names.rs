//! Who may register which service name on a hub, and for how long a name stays its owner's.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::auth::Grants;
use crate::extract::Peer;
use crate::keys::AuthorizedKeys;

/// The longest service name a hub registers.
pub const MAX_NAME: usize = crate::proto::hello::MAX_SERVICE_NAME;

/// The rules for service names on a hub (see the [module docs](super)).
#[derive(Debug, Clone)]
pub(crate) struct NamePolicy {
    pub(crate) reserved: Vec<Grants>,
    pub(crate) open: bool,
    pub(crate) grace: Duration,
    pub(crate) max_names: usize,
}

impl Default for NamePolicy {
    fn default() -> Self {
        Self {
            reserved: Vec::new(),
            open: false,
            grace: Duration::from_secs(300),
            max_names: 10_000,
        }
    }
}

impl NamePolicy {
    /// The names reserved by the `rrssh-services` lists in `keys`.
    pub(crate) fn reserve_from(mut self, keys: &AuthorizedKeys) -> Self {
        self.reserved = keys.iter().filter_map(|k| k.services()).collect();
        self
    }

    /// Why `peer` may not register `name` under these rules, if it may not.
    pub(crate) fn refusal(&self, peer: &Peer, name: &str) -> Option<String> {
        if let Err(why) = check_name(name) {
            return Some(why);
        }
        match &peer.info().services {
            Some(list) if !list.grants(name) => Some(format!(
                "key {} may not register the service name `{name}` (its rrssh-services option does not list it)",
                peer.fingerprint()
            )),
            Some(_) => None,
            None if self.reserved.iter().any(|r| r.grants(name)) => Some(format!(
                "the service name `{name}` is reserved for the keys whose rrssh-services list it"
            )),
            None if !self.open => Some(format!(
                "key {} may not register service names: its authorized_keys line has no rrssh-services, and the hub does not allow open registration",
                peer.fingerprint()
            )),
            None => None,
        }
    }
}

/// Checks a service name's length and characters (the rule a HELLO's `service` is held to).
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    crate::proto::hello::check_service_name(name)
}

/// A name's owner, and its session while it is connected.
#[derive(Debug)]
pub(crate) struct Owned {
    pub(crate) owner: String,
    /// The connection holding it (0 while the owner is away).
    pub(crate) id: u64,
    /// Since when the owner is away.
    pub(crate) away_since: Option<Instant>,
}

/// Forgets the names whose owners have been away longer than `grace`.
pub(crate) fn forget_stale(names: &mut HashMap<String, Owned>, grace: Duration, now: Instant) {
    names.retain(|_, o| o.away_since.is_none_or(|t| now.duration_since(t) < grace));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::PeerInfo;

    fn peer(services: Option<&str>) -> Peer {
        let mut info = PeerInfo::new("u", "SHA256:x");
        info.services = services.map(|s| Grants::parse(s).unwrap());
        Peer::new(info)
    }

    #[test]
    fn reserved_names_and_open_registration() {
        let keys = AuthorizedKeys::parse(
            "rrssh-users=\"svc\",rrssh-services=\"billing,sensor-*\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGXHk8PsPKv0B9q8YqnCjvX7hy6Pr3oSRXSgpZCbkrLA\n",
            "ak",
        )
        .unwrap();
        let mut policy = NamePolicy::default().reserve_from(&keys);
        let listed = peer(Some("billing"));
        let unlisted = peer(None);
        assert!(policy.refusal(&listed, "billing").is_none());
        assert!(policy.refusal(&listed, "payroll").is_some());
        assert!(
            policy
                .refusal(&unlisted, "anything")
                .unwrap()
                .contains("open registration")
        );
        policy.open = true;
        assert!(policy.refusal(&unlisted, "anything").is_none());
        assert!(
            policy
                .refusal(&unlisted, "billing")
                .unwrap()
                .contains("reserved")
        );
        assert!(
            policy
                .refusal(&unlisted, "sensor-9")
                .unwrap()
                .contains("reserved")
        );
        assert!(policy.refusal(&unlisted, &"x".repeat(65)).is_some());
        assert!(policy.refusal(&unlisted, "a b").is_some());
        assert!(policy.refusal(&unlisted, "a/b").is_some());
    }

    #[test]
    fn away_owners_are_forgotten_after_the_grace_period() {
        let now = Instant::now();
        let mut names = HashMap::new();
        names.insert(
            "here".to_owned(),
            Owned {
                owner: "a".into(),
                id: 1,
                away_since: None,
            },
        );
        names.insert(
            "gone".to_owned(),
            Owned {
                owner: "a".into(),
                id: 0,
                away_since: Some(now),
            },
        );
        forget_stale(
            &mut names,
            Duration::from_secs(60),
            now + Duration::from_secs(30),
        );
        assert_eq!(names.len(), 2);
        forget_stale(
            &mut names,
            Duration::from_secs(60),
            now + Duration::from_secs(61),
        );
        assert_eq!(names.keys().collect::<Vec<_>>(), ["here"]);
    }
}
