//! Who may log in: a server's `authorized_keys`, the CAs whose user certificates it trusts,
//! and the keys it refuses, taken as a whole and replaced as a whole while the server runs
//! ([`Hub::reload_access`](crate::Hub::reload_access); `SIGHUP` for `rrssh serve`).
//!
//! A replacement applies to logins from then on; connections already logged in keep what they
//! logged in with, as under sshd.

use std::sync::Arc;

use russh::keys::PublicKey;

use super::{AuthorizedKey, AuthorizedKeys, RevokedKeys};

/// An access that cannot be put in force.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// A key in `authorized_keys` is bound to no user name, so it could never log in.
    #[error(
        "authorized_keys line {line}: the key is bound to no user name: add rrssh-users=\"NAME,…\" to the line, or say whose file it is with AuthorizedKeys::owned_by"
    )]
    UnboundKey {
        /// The line.
        line: usize,
    },
    /// The server takes no logins (plain TCP): it has no access to replace.
    #[error("this server takes no SSH logins: there is no access to reload")]
    NoLogins,
}

/// Who may log in to a server: its `authorized_keys`, the CAs whose user certificates it
/// trusts, and the keys it refuses, replaced as a whole while the server runs
/// ([`Hub::reload_access`](crate::Hub::reload_access)). A replacement applies to logins from
/// then on; connections already logged in keep what they logged in with, as under sshd.
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

    pub(crate) fn into_parts(self) -> (AuthorizedKeys, Vec<PublicKey>, Option<Arc<RevokedKeys>>) {
        (self.authorized, self.trusted_user_cas, self.revoked)
    }

    /// What logins are checked against: the CAs as lines of their own, checked for keys bound
    /// to no user, and whether certificates may log in at all (`user_files`: per-user files
    /// may hold a `cert-authority` line).
    pub(crate) fn resolve(self, user_files: bool) -> Result<Resolved, AccessError> {
        let mut authorized = self.authorized;
        for ca in self.trusted_user_cas {
            // Any user name, which the certificate must name as a principal.
            authorized.push(AuthorizedKey::trusted_user_ca(ca));
        }
        if let Some(k) = authorized.unbound() {
            return Err(AccessError::UnboundKey { line: k.line });
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
pub(crate) struct Resolved {
    pub(crate) authorized: AuthorizedKeys,
    /// Whether certificates may log in: a `cert-authority` line, or per-user files that may
    /// hold one (decided when the access is set, not at every offered key).
    pub(crate) takes_certificates: bool,
    /// Revoked keys and certificates, checked at every login.
    pub(crate) revoked: Option<Arc<RevokedKeys>>,
}
