//! TLS for the web carrier (rustls, with *ring*): the server's certificate, read from PEM files
//! and reloaded in place ([`ServerCertificate`]) or obtained and renewed from an ACME authority
//! such as Let's Encrypt ([`Acme`], the `acme` feature), and the authorities a client trusts
//! ([`TrustedRoots`]: the system's, or a private CA's).

#[cfg(feature = "acme")]
mod acme;
mod certificate;
mod roots;

use std::sync::Arc;

#[cfg(feature = "acme")]
pub use self::acme::{Acme, AcmeError, AcmeState, AcmeTask, LETS_ENCRYPT};
pub use self::certificate::ServerCertificate;
pub use self::roots::TrustedRoots;

/// The ALPN protocol of ACME's TLS-ALPN-01 challenge (RFC 8737): a handshake asking for it is
/// answered with a challenge certificate, and the connection is closed after it.
pub(crate) const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

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

/// The cryptography every TLS configuration of rrssh uses: *ring*'s, with the AES-128-GCM
/// suites first. What TLS carries here is SSH, encrypted end to end already (AES-256-GCM by
/// rrssh's preference), so TLS only has to get it past the network: AES-128 does that in 10
/// rounds instead of 14, and the profile of a `wss://` stream is mostly AES-GCM and copies.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    let aes_128 = |s: &rustls::SupportedCipherSuite| {
        matches!(
            s.suite(),
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
                | rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    };
    provider.cipher_suites.sort_by_key(|s| !aes_128(s));
    Arc::new(provider)
}
