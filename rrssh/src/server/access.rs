//! Who may log in: the server's `authorized_keys`, the CAs whose user certificates it trusts,
//! and the keys it refuses, taken as a whole and replaced as a whole while the server runs
//! ([`Hub::reload_access`](crate::Hub::reload_access); `SIGHUP` for `rrssh serve`).
//!
//! A replacement applies to logins from then on; connections already logged in keep what they
//! logged in with, as under sshd.

use std::sync::{Arc, RwLock};

use russh::keys::PublicKey;

use super::ServerError;
use crate::keys::{AuthorizedKey, AuthorizedKeys, RevokedKeys};

/// Who may log in to a server (see the [module docs](self)).
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Access {
    authorized: AuthorizedKeys,
    trusted_user_cas: Vec<PublicKey>,
    revoked: Option<Arc<RevokedKeys>>,
}

impl Access {
    /// The keys of `authorized` may log in, each as the user names it is bound to.
    pub fn new(authorized: AuthorizedKeys) -> Self {
        Self {
            authorized,
            ..Self::default()
        }
    }

    /// Also the user certificates these CAs signed (see
    /// [`Server::trusted_user_ca_keys`](crate::Server::trusted_user_ca_keys)).
    pub fn trusted_user_ca_keys(mut self, keys: impl IntoIterator<Item = PublicKey>) -> Self {
        self.trusted_user_cas.extend(keys);
        self
    }

    /// Except the keys and certificates `revoked` lists.
    pub fn revoked_keys(mut self, revoked: Arc<RevokedKeys>) -> Self {
        self.revoked = Some(revoked);
        self
    }

    pub(super) fn into_parts(self) -> (AuthorizedKeys, Vec<PublicKey>, Option<Arc<RevokedKeys>>) {
        (self.authorized, self.trusted_user_cas, self.revoked)
    }

    /// What logins are checked against: the CAs as lines of their own, checked for keys bound
    /// to no user, and whether certificates may log in at all (`user_files`: per-user files
    /// may hold a `cert-authority` line).
    pub(super) fn resolve(self, user_files: bool) -> Result<Resolved, ServerError> {
        let mut authorized = self.authorized;
        for ca in self.trusted_user_cas {
            // Any user name, which the certificate must name as a principal.
            authorized.push(AuthorizedKey::trusted_user_ca(ca));
        }
        if let Some(k) = authorized.unbound() {
            return Err(ServerError::UnboundKey { line: k.line });
        }
        let takes_certificates =
            user_files || authorized.iter().any(|k| k.options.has("cert-authority"));
        Ok(Resolved {
            authorized,
            takes_certificates,
            revoked: self.revoked,
        })
    }
}

/// An [`Access`] as logins read it.
pub(super) struct Resolved {
    pub(super) authorized: AuthorizedKeys,
    /// Whether certificates may log in: a `cert-authority` line, or per-user files that may
    /// hold one (decided when the access is set, not at every offered key).
    pub(super) takes_certificates: bool,
    /// Revoked keys and certificates, checked at every login.
    pub(super) revoked: Option<Arc<RevokedKeys>>,
}

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
            Err(ServerError::UnboundKey { line: 1 })
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
