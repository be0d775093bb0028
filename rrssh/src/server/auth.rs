//! Which `authorized_keys` line lets a key log in as a user: the server's file, then the
//! user's own file (`%u` pattern), read as sshd reads them.

use std::net::SocketAddr;
use std::time::SystemTime;

use russh::keys::{Certificate, PublicKey};

use super::shared::Shared;
use crate::extract::CertificateInfo;
use crate::keys::{AuthorizedKey, AuthorizedKeys, MAX_AUTHORIZED_KEYS_FILE, valid_user_name};

impl Shared {
    /// The line that lets `key` log in as `user` from `remote` now, or why none does.
    pub(super) async fn authorize(
        &self,
        user: &str,
        key: &PublicKey,
        remote: Option<SocketAddr>,
    ) -> Result<AuthorizedKey, String> {
        if !valid_user_name(user) {
            return Err("the user name is not one rrssh accepts".into());
        }
        let access = self.access.get();
        if let Some(revoked) = &access.revoked {
            revoked.check_key(key)?;
        }
        let addr = remote.map(|a| crate::keys::canonical_addr(a.ip()));
        let now = SystemTime::now();
        let shared = access.authorized.authorize(key, user, addr, now);
        let why = match shared {
            Ok(k) => return Ok(k.clone()),
            Err(why) => why,
        };
        let Some(pattern) = &self.user_keys else {
            return Err(why.to_string());
        };
        let path = pattern.replace("%u", user);
        match read_user_file(&path, user).await {
            Ok(Some(keys)) => keys
                .authorize(key, user, addr, now)
                .cloned()
                .map_err(|e| format!("{e} (in {path})")),
            Ok(None) => Err(why.to_string()),
            Err(e) => {
                crate::logging::limited("user-keys", || {
                    tracing::warn!(error = %e, "cannot read a user's authorized_keys; refused");
                });
                Err(e)
            }
        }
    }
}

impl Shared {
    /// Whether any line (the server's, or a user's own file) may let certificates in: then a
    /// key offered without a line of its own may be a certificate's, and is let sign.
    pub(super) fn takes_certificates(&self) -> bool {
        self.access.get().takes_certificates
    }

    /// Whether `key` is revoked now.
    pub(super) fn is_revoked(&self, key: &PublicKey) -> bool {
        self.access
            .get()
            .revoked
            .as_ref()
            .is_some_and(|r| r.check_key(key).is_err())
    }

    /// The line a user certificate logs in with as `user` from `remote` now (see
    /// [`AuthorizedKeys::authorize_certificate`]), and what the certificate says; or why not.
    pub(super) async fn authorize_certificate(
        &self,
        user: &str,
        cert: &Certificate,
        remote: Option<SocketAddr>,
    ) -> Result<(AuthorizedKey, CertificateInfo), String> {
        if !valid_user_name(user) {
            return Err("the user name is not one rrssh accepts".into());
        }
        let access = self.access.get();
        if let Some(revoked) = &access.revoked {
            revoked.check_certificate(cert)?;
        }
        let addr = remote.map(|a| crate::keys::canonical_addr(a.ip()));
        let now = SystemTime::now();
        let why = match access
            .authorized
            .authorize_certificate(cert, user, addr, now)
        {
            Ok(found) => return Ok(found),
            Err(why) => why,
        };
        let Some(pattern) = &self.user_keys else {
            return Err(why);
        };
        let path = pattern.replace("%u", user);
        match read_user_file(&path, user).await {
            Ok(Some(keys)) => keys
                .authorize_certificate(cert, user, addr, now)
                .map_err(|e| format!("{e} (in {path})")),
            Ok(None) => Err(why),
            Err(e) => Err(e),
        }
    }
}

/// Reads `path` as `user`'s own `authorized_keys` (its keys bound to `user`); `None` if there
/// is no such file.
async fn read_user_file(path: &str, user: &str) -> Result<Option<AuthorizedKeys>, String> {
    let meta = match tokio::fs::metadata(path).await {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{path}: {e}")),
    };
    if meta.len() > MAX_AUTHORIZED_KEYS_FILE {
        return Err(format!(
            "{path}: {} bytes, over the limit of {MAX_AUTHORIZED_KEYS_FILE}",
            meta.len()
        ));
    }
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| format!("{path}: {e}"))?;
    AuthorizedKeys::parse(&text, path)
        .map(|k| Some(k.owned_by(user)))
        .map_err(|e| e.to_string())
}
