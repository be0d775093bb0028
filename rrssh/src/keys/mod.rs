//! SSH keys in OpenSSH's own formats: private keys, `authorized_keys`, `known_hosts`, and
//! revoked keys and certificates (KRLs).

mod authorized_keys;
pub(crate) mod ca;
mod known_hosts;
mod pattern;
pub(crate) mod permit;
mod revoked;

use std::path::Path;

pub use russh::keys::{Certificate, PrivateKey, PublicKey};

pub(crate) use self::authorized_keys::canonical_addr;
pub use self::authorized_keys::{
    AuthorizedKey, AuthorizedKeys, AuthorizedKeysError, CERTIFICATE_GRANTS, KeyOptions, KeyRefusal,
    MAX_FILE as MAX_AUTHORIZED_KEYS_FILE, valid_user_name,
};
pub use self::ca::{
    CertificateRequest, DEFAULT_USER_EXTENSIONS, RENEW_PATH, RENEW_SCOPE, renew_certificate,
    sign_certificate,
};
pub use self::known_hosts::{HostKeyError, HostKeyPolicy};
pub use self::revoked::{MAX_FILE as MAX_REVOKED_KEYS_FILE, RevokedKeys};

/// A key operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The key did not parse or decrypt.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

/// Loads an OpenSSH private key (ed25519, ecdsa, rsa; encrypted ones need the passphrase).
pub fn load_private_key(
    path: impl AsRef<Path>,
    passphrase: Option<&str>,
) -> Result<PrivateKey, KeyError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.display().to_string(),
        source,
    })?;
    russh::keys::decode_secret_key(&text, passphrase).map_err(|e| KeyError::Format {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Generates a new ed25519 key.
pub fn generate_ed25519(comment: &str) -> PrivateKey {
    let mut key = PrivateKey::random(
        &mut russh::keys::key::safe_rng(),
        russh::keys::Algorithm::Ed25519,
    )
    .unwrap_or_else(|e| panic!("ed25519 key generation cannot fail: {e}"));
    key.set_comment(comment);
    key
}

/// Loads the unencrypted private key at `path`, first generating an ed25519 key pair there (with
/// `comment`, and its `.pub` next to it) if the file does not exist yet.
pub fn load_or_generate_ed25519(
    path: impl AsRef<Path>,
    comment: &str,
) -> Result<PrivateKey, KeyError> {
    let path = path.as_ref();
    if !path.exists() {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| KeyError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        write_key_pair(&generate_ed25519(comment), path)?;
    }
    load_private_key(path, None)
}

/// Writes a private key in OpenSSH format (mode 0600) and its public key next to it (`.pub`).
pub fn write_key_pair(key: &PrivateKey, path: impl AsRef<Path>) -> Result<(), KeyError> {
    let path = path.as_ref();
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    let fmt = |e: russh::keys::ssh_key::Error| KeyError::Format {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let pem = key
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .map_err(fmt)?;
    write_private(path, pem.as_bytes()).map_err(io)?;
    let public = key.public_key().to_openssh().map_err(fmt)?;
    let pub_path = format!("{}.pub", path.display());
    std::fs::write(&pub_path, format!("{public}\n")).map_err(|source| KeyError::Io {
        path: pub_path,
        source,
    })
}

#[cfg(unix)]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // `mode` applies only to a new file: an old one keeps its mode unless set here.
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    f.write_all(data)
}

#[cfg(not(unix))]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, data)
}

/// The SHA-256 fingerprint of a key in OpenSSH's format (`SHA256:…`).
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(russh::keys::HashAlg::Sha256).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_or_generate_makes_a_key_once_then_loads_it() {
        let dir = std::env::temp_dir().join(format!("rrssh-keys-test-{}", std::process::id()));
        let path = dir.join("nested").join("id_ed25519");
        let first = load_or_generate_ed25519(&path, "made@test").unwrap();
        assert!(dir.join("nested").join("id_ed25519.pub").exists());
        let again = load_or_generate_ed25519(&path, "ignored").unwrap();
        assert_eq!(
            fingerprint(first.public_key()),
            fingerprint(again.public_key())
        );
        assert_eq!(again.comment().to_string(), "made@test");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn overwriting_a_key_makes_it_private_again() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("rrssh-keys-mode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("id");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_key_pair(&generate_ed25519("x"), &path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
