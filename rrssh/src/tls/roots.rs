//! The certificate authorities a client trusts when it dials `wss://`.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::TlsError;

/// The authorities a `wss://` client checks the server's certificate against: the system's
/// (`/etc/ssl/certs`, or `SSL_CERT_FILE`/`SSL_CERT_DIR`) by default, or only those of a PEM
/// file ([`from_pem_file`](Self::from_pem_file), a private CA, `--tls-ca`).
///
/// Its clones share one TLS client configuration, and with it a cache of sessions: a client
/// that dials the same server again resumes its TLS session instead of a full handshake.
#[derive(Clone, Debug)]
pub struct TrustedRoots {
    store: Arc<RootCertStore>,
    config: Arc<OnceLock<Arc<rustls::ClientConfig>>>,
}

impl TrustedRoots {
    fn new(store: RootCertStore) -> Self {
        Self {
            store: Arc::new(store),
            config: Arc::default(),
        }
    }

    /// The system's authorities, read once per process; unreadable ones are skipped (with a
    /// log line).
    pub fn system() -> Self {
        static SYSTEM: OnceLock<TrustedRoots> = OnceLock::new();
        SYSTEM.get_or_init(Self::read_system).clone()
    }

    fn read_system() -> Self {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::debug!(error = %e, "a system certificate could not be read");
        }
        let mut store = RootCertStore::empty();
        let (added, ignored) = store.add_parsable_certificates(found.certs);
        if ignored > 0 {
            tracing::debug!(
                added,
                ignored,
                "system certificates that are not authorities were skipped"
            );
        }
        Self::new(store)
    }

    /// Only the authorities in this PEM file.
    pub fn from_pem_file(path: impl AsRef<Path>) -> Result<Self, TlsError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| TlsError::new(&shown, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::new(&shown, e))?;
        let mut store = RootCertStore::empty();
        for cert in certs {
            store.add(cert).map_err(|e| TlsError::new(&shown, e))?;
        }
        if store.is_empty() {
            return Err(TlsError::new(shown, "no certificate in the file"));
        }
        Ok(Self::new(store))
    }

    /// The rustls client configuration trusting these authorities (HTTP/1.1 by ALPN), made
    /// on first use and shared by every clone.
    pub(crate) fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        if let Some(config) = self.config.get() {
            return Ok(config.clone());
        }
        let mut config = rustls::ClientConfig::builder_with_provider(super::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::new("TLS", e))?
            .with_root_certificates(self.store.clone())
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // Two dialers racing make one each; the first stays.
        Ok(self.config.get_or_init(|| Arc::new(config)).clone())
    }
}
