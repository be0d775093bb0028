//! Revoked keys and certificates, as sshd(8) reads its `RevokedKeys` file: a key revocation list
//! (KRL, `ssh-keygen -k`) or a text file of public keys. The file is read again when it
//! changes, so a key is revoked without a restart; a file that cannot be read refuses every
//! key (sshd fails closed the same way).

mod krl;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use russh::keys::{Certificate, HashAlg, PublicKey};
use sha1::Digest as _;

/// The largest revocation file read.
pub const MAX_FILE: u64 = 64 << 20;

/// Revoked keys and certificates, as sshd(8) reads its `RevokedKeys` file: a key revocation
/// list (KRL, `ssh-keygen -k`: keys, fingerprints, certificates by CA and serial, serial range
/// or key id) or a text file of public keys. The file is read again when it changes, so a key
/// is revoked without a restart; a file that cannot be read refuses every key (sshd fails
/// closed the same way).
#[derive(Debug)]
pub struct RevokedKeys {
    path: PathBuf,
    state: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    /// The file's modification time and length when it was read.
    stamp: Option<(SystemTime, u64)>,
    list: Result<Arc<List>, String>,
}

#[derive(Debug)]
enum List {
    Krl(krl::Krl),
    /// The blobs of the public keys in a text file.
    Keys(HashSet<Vec<u8>>),
}

fn blob(key: &PublicKey) -> Vec<u8> {
    key.to_bytes().unwrap_or_default()
}

impl List {
    fn read(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        let len = std::fs::metadata(path)
            .map_err(|e| format!("{shown}: {e}"))?
            .len();
        if len > MAX_FILE {
            return Err(format!(
                "{shown}: {len} bytes, over the limit of {MAX_FILE}"
            ));
        }
        let data = std::fs::read(path).map_err(|e| format!("{shown}: {e}"))?;
        if krl::is_krl(&data) {
            return krl::parse(&data)
                .map(List::Krl)
                .map_err(|e| format!("{shown}: {e}"));
        }
        let text =
            String::from_utf8(data).map_err(|_| format!("{shown}: neither a KRL nor text"))?;
        let mut keys = HashSet::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = PublicKey::from_openssh(line)
                .map_err(|e| format!("{shown} line {}: not a public key ({e})", i + 1))?;
            keys.insert(blob(&key));
        }
        Ok(List::Keys(keys))
    }

    /// Whether the plain key is revoked.
    fn revokes_key(&self, key: &PublicKey) -> bool {
        let blob = blob(key);
        match self {
            List::Keys(keys) => keys.contains(&blob),
            List::Krl(krl) => {
                krl.blobs.contains(&blob)
                    || krl
                        .sha256
                        .contains(key.fingerprint(HashAlg::Sha256).as_bytes())
                    || krl.sha1.contains(&sha1::Sha1::digest(&blob)[..])
            }
        }
    }

    /// Whether the certificate is revoked: its key, its CA's key, or it by serial or key id.
    fn revokes_certificate(&self, cert: &Certificate) -> bool {
        let key = PublicKey::new(cert.public_key().clone(), "");
        let ca = PublicKey::new(cert.signature_key().clone(), "");
        if self.revokes_key(&key) || self.revokes_key(&ca) {
            return true;
        }
        let List::Krl(krl) = self else {
            return false;
        };
        let ca_blob = blob(&ca);
        krl.certificates.iter().any(|section| {
            section.ca.as_ref().is_none_or(|c| *c == ca_blob)
                && section.revokes(cert.serial(), cert.key_id())
        })
    }
}

impl RevokedKeys {
    /// Reads the file at `path` now; fails if it cannot be read or parsed.
    pub fn load(path: impl Into<PathBuf>) -> Result<Arc<Self>, String> {
        let path = path.into();
        let list = List::read(&path)?;
        Ok(Arc::new(Self {
            state: Mutex::new(Loaded {
                stamp: stamp(&path),
                list: Ok(Arc::new(list)),
            }),
            path,
        }))
    }

    /// The list as the file now says, read again if it changed since.
    fn current(&self) -> Result<Arc<List>, String> {
        let now = stamp(&self.path);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if now.is_none() || now != state.stamp {
            let fresh = List::read(&self.path).map(Arc::new);
            if let Err(e) = &fresh {
                crate::logging::limited("revoked-keys", || {
                    tracing::error!(error = %e, "revoked keys unreadable: every key is refused");
                });
            }
            let result = fresh.clone();
            // The old list goes after the lock is released.
            let old = std::mem::replace(
                &mut *state,
                Loaded {
                    stamp: now,
                    list: fresh,
                },
            );
            drop(state);
            drop(old);
            return result;
        }
        state.list.clone()
    }

    /// `Err` with why, if `key` may not log in: revoked, or the list unreadable.
    pub fn check_key(&self, key: &PublicKey) -> Result<(), String> {
        let list = self.current()?;
        if list.revokes_key(key) {
            return Err("the key is revoked".into());
        }
        Ok(())
    }

    /// `Err` with why, if `cert` may not log in: revoked (itself, its key or its CA), or the
    /// list unreadable.
    pub fn check_certificate(&self, cert: &Certificate) -> Result<(), String> {
        let list = self.current()?;
        if list.revokes_certificate(cert) {
            return Err("the certificate is revoked".into());
        }
        Ok(())
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}
