//! Checking a server's host key against `known_hosts` as ssh(1) reads it: plain and hashed
//! (`|1|`) names, `[host]:port`, wildcard and negated patterns, `@revoked` keys.

mod file;

use std::path::{Path, PathBuf};

use russh::keys::PublicKey;

use super::fingerprint;

/// How a client checks the server's host key.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum HostKeyPolicy {
    /// The key must be in this `known_hosts` file (OpenSSH's `StrictHostKeyChecking yes`).
    Strict(PathBuf),
    /// An unknown host's key is recorded in the file; a changed key is still refused
    /// (`StrictHostKeyChecking accept-new`).
    AcceptNew(PathBuf),
    /// The key must be exactly this one.
    Pinned(PublicKey),
}

/// Why a host key was refused.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum HostKeyError {
    /// The host is not in `known_hosts`.
    #[error(
        "host key for {host} is not known ({got}); add it to {file}, or trust new hosts on first use (`HostKeyPolicy::AcceptNew`)"
    )]
    Unknown {
        /// `host:port`.
        host: String,
        /// Fingerprint of the key the server showed.
        got: String,
        /// The `known_hosts` file.
        file: String,
    },
    /// The host is known with another key: possibly an attack.
    #[error(
        "host key for {host} changed: expected {expected}, got {got}; if the change is legitimate, remove the old line {line} of {file}"
    )]
    Changed {
        /// `host:port`.
        host: String,
        /// Fingerprint(s) on record.
        expected: String,
        /// Fingerprint of the key the server showed.
        got: String,
        /// The first line on record.
        line: usize,
        /// The `known_hosts` file.
        file: String,
    },
    /// A host certificate from an authority on record was refused.
    #[error("host certificate for {host} refused: {why} (authority on line {line} of {file})")]
    Certificate {
        /// `host:port`.
        host: String,
        /// Why.
        why: String,
        /// The `@cert-authority` line.
        line: usize,
        /// The `known_hosts` file.
        file: String,
    },
    /// The key is marked `@revoked` in `known_hosts`: never accepted.
    #[error("host key {got} for {host} is revoked (line {line} of {file})")]
    Revoked {
        /// `host:port`.
        host: String,
        /// The key's fingerprint.
        got: String,
        /// The `@revoked` line.
        line: usize,
        /// The `known_hosts` file.
        file: String,
    },
    /// The pinned key differs.
    #[error("host key for {host} is {got}, expected the pinned {expected}")]
    NotPinned {
        /// `host:port`.
        host: String,
        /// The pinned key's fingerprint.
        expected: String,
        /// The key the server showed.
        got: String,
    },
    /// `known_hosts` could not be read or written.
    #[error("known_hosts {file}: {message}")]
    File {
        /// The file.
        file: String,
        /// Why.
        message: String,
    },
}

impl HostKeyPolicy {
    /// Whether the file names an authority (`@cert-authority`) for this host: then a client
    /// asks the server for a host certificate, as `ssh` does.
    pub fn trusts_authority_for(&self, host: &str, port: u16) -> bool {
        match self {
            HostKeyPolicy::Pinned(_) => false,
            HostKeyPolicy::Strict(p) | HostKeyPolicy::AcceptNew(p) => std::fs::read_to_string(p)
                .is_ok_and(|text| {
                    !file::lookup(&text, &file::lookup_name(host, port))
                        .authorities
                        .is_empty()
                }),
        }
    }

    /// Checks a host certificate as `ssh` does: signed by an authority the file names for this
    /// host (`@cert-authority`), a host certificate within its validity whose principals name
    /// the host (or none at all), neither it nor its authority `@revoked`. With no authority
    /// for the host, the certificate's key is checked as a plain key.
    pub fn check_certificate(
        &self,
        host: &str,
        port: u16,
        cert: &russh::keys::Certificate,
    ) -> Result<(), HostKeyError> {
        let key = PublicKey::new(cert.public_key().clone(), "");
        let (HostKeyPolicy::Strict(path) | HostKeyPolicy::AcceptNew(path)) = self else {
            return self.check(host, port, &key);
        };
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let known = file::lookup(&text, &file::lookup_name(host, port));
        let ca = PublicKey::new(cert.signature_key().clone(), "");
        let Some((line, _)) = known
            .authorities
            .iter()
            .find(|(_, k)| k.key_data() == ca.key_data())
        else {
            return self.check(host, port, &key);
        };
        let host_port = format!("{host}:{port}");
        let refused = |why: String| HostKeyError::Certificate {
            host: host_port.clone(),
            why,
            line: *line,
            file: file.clone(),
        };
        if let Some((revoked, _)) = known
            .revoked
            .iter()
            .find(|(_, k)| k.key_data() == key.key_data() || k.key_data() == ca.key_data())
        {
            return Err(refused(format!(
                "its key or authority is @revoked (line {revoked})"
            )));
        }
        crate::keys::ca::check_signed_now(
            cert,
            russh::keys::ssh_key::certificate::CertType::Host,
            std::time::SystemTime::now(),
        )
        .map_err(refused)?;
        let principals = cert.valid_principals();
        if !principals.is_empty() && !principals.iter().any(|p| p.eq_ignore_ascii_case(host)) {
            return Err(refused(format!(
                "it names {} but not {host}",
                principals.join(", ")
            )));
        }
        Ok(())
    }

    /// Checks `key` for `host:port`. A key marked `@revoked` on a line matching the host is
    /// refused; otherwise any matching line accepts (so a host with several keys on record, as
    /// during a rotation, is accepted for each of them). This reads (and for accept-new,
    /// writes) the file: call it off the async runtime's threads.
    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> Result<(), HostKeyError> {
        let host_port = format!("{host}:{port}");
        let got = fingerprint(key);
        let path: &Path = match self {
            HostKeyPolicy::Pinned(p) => {
                return if p.key_data() == key.key_data() {
                    Ok(())
                } else {
                    Err(HostKeyError::NotPinned {
                        host: host_port,
                        expected: fingerprint(p),
                        got,
                    })
                };
            }
            HostKeyPolicy::Strict(p) | HostKeyPolicy::AcceptNew(p) => p,
        };
        let file = path.display().to_string();
        let io_err = |e: std::io::Error| HostKeyError::File {
            file: file.clone(),
            message: e.to_string(),
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io_err(e)),
        };
        let known = file::lookup(&text, &file::lookup_name(host, port));
        if let Some((line, _)) = known
            .revoked
            .iter()
            .find(|(_, k)| k.key_data() == key.key_data())
        {
            return Err(HostKeyError::Revoked {
                host: host_port,
                got,
                line: *line,
                file,
            });
        }
        if known
            .keys
            .iter()
            .any(|(_, k)| k.key_data() == key.key_data())
        {
            return Ok(());
        }
        if let Some((line, _)) = known.keys.first() {
            let expected = known
                .keys
                .iter()
                .map(|(_, k)| fingerprint(k))
                .collect::<Vec<_>>()
                .join(" or ");
            return Err(HostKeyError::Changed {
                host: host_port,
                expected,
                got,
                line: *line,
                file,
            });
        }
        match self {
            HostKeyPolicy::AcceptNew(_) => {
                if let Some(dir) = path.parent()
                    && !dir.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(dir).map_err(|e| HostKeyError::File {
                        file: file.clone(),
                        message: e.to_string(),
                    })?;
                }
                russh::keys::known_hosts::learn_known_hosts_path(host, port, key, path).map_err(
                    |e| HostKeyError::File {
                        file,
                        message: e.to_string(),
                    },
                )
            }
            _ => Err(HostKeyError::Unknown {
                host: host_port,
                got,
                file,
            }),
        }
    }
}
