//! SSH keys in OpenSSH's own formats: private keys, `authorized_keys`, `known_hosts`, and
//! revoked keys and certificates (KRLs).

pub(crate) mod access;
mod authorized_keys;
pub(crate) mod ca;
mod known_hosts;
mod pattern;
pub(crate) mod permit;
mod revoked;

use std::path::Path;

pub use russh::keys::{Certificate, PrivateKey, PublicKey};

pub use self::access::{Access, AccessError};
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
    /// The private key file may be read by others than its owner, which `ssh` refuses too.
    #[error(
        "{path}: permissions {mode:04o} are too open: a private key must not be accessible by others (chmod 600 {path})"
    )]
    TooOpen {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The file does not exist, and was not to be created.
    #[error("{path}: no such key file")]
    Missing {
        /// The file.
        path: String,
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
///
/// As `ssh` does, a key file owned by the current user that its group or others may access is
/// refused ([`KeyError::TooOpen`]).
pub fn load_private_key(
    path: impl AsRef<Path>,
    passphrase: Option<&str>,
) -> Result<PrivateKey, KeyError> {
    let path = path.as_ref();
    // The public half given for the private one: say so, whatever its mode.
    if let Ok(text) = std::fs::read_to_string(path)
        && PublicKey::from_openssh(text.trim()).is_ok()
    {
        let message = match path.extension().is_some_and(|e| e == "pub") {
            true => format!(
                "this is a public key; give the private one ({})",
                path.with_extension("").display()
            ),
            false => "this is a public key; give the private one".to_owned(),
        };
        return Err(KeyError::Format {
            path: path.display().to_string(),
            message,
        });
    }
    check_private_mode(path)?;
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.display().to_string(),
        source,
    })?;
    russh::keys::decode_secret_key(&text, passphrase).map_err(|e| KeyError::Format {
        path: path.display().to_string(),
        message: match (passphrase, is_encrypted_text(&text)) {
            (None, true) => "the key is encrypted: a passphrase is needed".to_owned(),
            (Some(_), true) => format!("the passphrase does not decrypt the key ({e})"),
            _ => e.to_string(),
        },
    })
}

/// Whether the OpenSSH private key file at `path` is encrypted (needs a passphrase to load);
/// `false` for a file that cannot be read or parsed (loading it says why).
pub fn is_encrypted(path: impl AsRef<Path>) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| is_encrypted_text(&t))
}

fn is_encrypted_text(text: &str) -> bool {
    PrivateKey::from_openssh(text).is_ok_and(|k| k.is_encrypted())
}

/// The key encrypted with `passphrase` (AES-256-CTR, bcrypt-pbkdf, as `ssh-keygen -N` does),
/// for [`write_key_pair`].
pub fn encrypt_private_key(key: &PrivateKey, passphrase: &str) -> Result<PrivateKey, KeyError> {
    key.encrypt(&mut russh::keys::key::safe_rng(), passphrase)
        .map_err(|e| KeyError::Format {
            path: String::from("(in memory)"),
            message: e.to_string(),
        })
}

/// Refuses a private key file its owner (the current user) lets the group or others access, as
/// OpenSSH's `sshkey_perm_ok` does; a file owned by another account is not judged.
#[cfg(unix)]
fn check_private_mode(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            KeyError::Missing {
                path: path.display().to_string(),
            }
        } else {
            KeyError::Io {
                path: path.display().to_string(),
                source,
            }
        }
    })?;
    let own = rustix::process::getuid().as_raw() == meta.uid();
    if own && meta.mode() & 0o077 != 0 {
        return Err(KeyError::TooOpen {
            path: path.display().to_string(),
            mode: meta.mode() & 0o7777,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private_mode(_: &Path) -> Result<(), KeyError> {
    Ok(())
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

    #[test]
    fn an_encrypted_key_loads_with_its_passphrase_only() {
        let dir = std::env::temp_dir().join(format!("rrssh-keys-enc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("id");
        let key = generate_ed25519("x");
        write_key_pair(&encrypt_private_key(&key, "sesame").unwrap(), &path).unwrap();
        assert!(is_encrypted(&path));
        let without = load_private_key(&path, None).unwrap_err().to_string();
        assert!(without.contains("a passphrase is needed"), "{without}");
        let wrong = load_private_key(&path, Some("nope"))
            .unwrap_err()
            .to_string();
        assert!(wrong.contains("does not decrypt"), "{wrong}");
        let loaded = load_private_key(&path, Some("sesame")).unwrap();
        assert_eq!(
            fingerprint(loaded.public_key()),
            fingerprint(key.public_key())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_key_others_may_read_is_refused_as_ssh_refuses_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("rrssh-keys-open-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("id");
        write_key_pair(&generate_ed25519("x"), &path).unwrap();
        for mode in [0o640, 0o604, 0o644] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = load_private_key(&path, None).unwrap_err();
            assert!(
                matches!(e, KeyError::TooOpen { mode: m, .. } if m == mode),
                "{e}"
            );
            assert!(e.to_string().contains("are too open"), "{e}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        load_private_key(&path, None).unwrap();
        let missing = load_private_key(dir.join("nope"), None).unwrap_err();
        assert!(matches!(missing, KeyError::Missing { .. }), "{missing}");
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
