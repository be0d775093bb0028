//! TLS for the web carrier (rustls, with *ring*): the server's certificate, read from PEM files
//! and reloaded in place ([`ServerCertificate`]), and the authorities a client trusts
//! ([`TrustedRoots`]: the system's, or a private CA's).

mod certificate;
mod roots;

use std::sync::Arc;

pub use self::certificate::ServerCertificate;
pub use self::roots::TrustedRoots;

/// A certificate or key could not be read or used.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {why}")]
pub struct TlsError {
    what: String,
    why: String,
}

impl TlsError {
    pub(crate) fn new(what: impl Into<String>, why: impl std::fmt::Display) -> Self {
        Self {
            what: what.into(),
            why: why.to_string(),
        }
    }
}

/// The cryptography every TLS configuration of rrssh uses.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
