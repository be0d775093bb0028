//! The access in force on a running server (see [`Access`](crate::keys::Access)), replaced
//! whole by a reload while logins read it.

use std::sync::{Arc, RwLock};

use crate::keys::access::Resolved;

/// The access in force, swapped whole.
pub(super) struct Current(RwLock<Arc<Resolved>>);

impl Current {
    pub(super) fn new(resolved: Resolved) -> Self {
        Self(RwLock::new(Arc::new(resolved)))
    }

    /// The access in force now (what one login is checked against from start to end).
    pub(super) fn get(&self) -> Arc<Resolved> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `resolved` in force; the old one is freed after the lock is released (by the last
    /// login still reading it).
    pub(super) fn replace(&self, resolved: Resolved) {
        let old = {
            let mut guard = self.0.write().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *guard, Arc::new(resolved))
        };
        drop(old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Access, AccessError, AuthorizedKeys};

    fn keys(text: &str) -> AuthorizedKeys {
        AuthorizedKeys::parse(text, "test").unwrap()
    }

    #[test]
    fn a_replacement_is_what_the_next_reader_gets_and_the_old_one_lives_on_for_its_readers() {
        let one = crate::keys::generate_ed25519("one");
        let two = crate::keys::generate_ed25519("two");
        let line = |k: &crate::keys::PrivateKey| {
            format!(
                "rrssh-users=\"ada\" {}",
                k.public_key().to_openssh().unwrap()
            )
        };
        let current = Current::new(Access::new(keys(&line(&one))).resolve(false).unwrap());
        let held = current.get();
        current.replace(Access::new(keys(&line(&two))).resolve(false).unwrap());
        let now = current.get();
        let t = std::time::SystemTime::now();
        assert!(
            held.authorized
                .authorize(one.public_key(), "ada", None, t)
                .is_ok()
        );
        assert!(
            now.authorized
                .authorize(one.public_key(), "ada", None, t)
                .is_err()
        );
        assert!(
            now.authorized
                .authorize(two.public_key(), "ada", None, t)
                .is_ok()
        );
    }

    #[test]
    fn an_unbound_key_is_refused_and_a_ca_takes_certificates() {
        let k = crate::keys::generate_ed25519("k");
        let unbound = keys(&k.public_key().to_openssh().unwrap());
        assert!(matches!(
            Access::new(unbound).resolve(false),
            Err(AccessError::UnboundKey { line: 1 })
        ));
        let with_ca = Access::new(AuthorizedKeys::default())
            .trusted_user_ca_keys([k.public_key().clone()])
            .resolve(false)
            .unwrap();
        assert!(with_ca.takes_certificates);
        let plain = Access::new(AuthorizedKeys::default())
            .resolve(false)
            .unwrap();
        assert!(!plain.takes_certificates);
        assert!(
            Access::new(AuthorizedKeys::default())
                .resolve(true)
                .unwrap()
                .takes_certificates
        );
    }
}
