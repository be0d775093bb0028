//! A server's certificate and key, from PEM files, reloaded in place: connections already open
//! keep the certificate they shook hands with, new ones get the new one.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::TlsError;

/// The certificate a TLS listener presents, read from a PEM chain (leaf first) and a PEM
/// private key (PKCS#8, PKCS#1 or SEC1), as certbot and most ACME clients write them.
/// [`reload`](Self::reload) reads the files again (`rrssh serve` does on `SIGHUP`).
pub struct ServerCertificate {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for ServerCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCertificate")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

impl ServerCertificate {
    /// Reads the certificate chain and key; fails, naming the file, if either cannot be read
    /// or parsed, or the key is not the certificate's.
    pub fn load(
        cert_file: impl Into<PathBuf>,
        key_file: impl Into<PathBuf>,
    ) -> Result<Arc<Self>, TlsError> {
        let (cert_file, key_file) = (cert_file.into(), key_file.into());
        let current = read(&cert_file, &key_file)?;
        Ok(Arc::new(Self {
            cert_file,
            key_file,
            current: RwLock::new(Arc::new(current)),
        }))
    }

    /// Reads the files again; on an error the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(read(&self.cert_file, &self.key_file)?);
        // The old one is dropped after the lock is released (handshakes in progress hold
        // their own reference).
        let old = std::mem::replace(
            &mut *self.current.write().unwrap_or_else(|e| e.into_inner()),
            fresh,
        );
        drop(old);
        Ok(())
    }

    /// The end-entity certificate in use (DER).
    pub fn leaf(&self) -> Vec<u8> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .cert
            .first()
            .map(|c| c.to_vec())
            .unwrap_or_default()
    }

    /// A rustls server configuration presenting this certificate (HTTP/1.1 by ALPN).
    pub(crate) fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(super::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::new("TLS", e))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for ServerCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

fn read(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, TlsError> {
    let shown = |p: &Path| p.display().to_string();
    let chain = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| TlsError::new(shown(cert_file), e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::new(shown(cert_file), e))?;
    if chain.is_empty() {
        return Err(TlsError::new(
            shown(cert_file),
            "no certificate in the file",
        ));
    }
    let key =
        PrivateKeyDer::from_pem_file(key_file).map_err(|e| TlsError::new(shown(key_file), e))?;
    let signer = super::provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::new(shown(key_file), e))?;
    let certified = CertifiedKey::new(chain, signer);
    certified.keys_match().map_err(|e| {
        TlsError::new(
            shown(key_file),
            format!("the key is not the certificate's ({e})"),
        )
    })?;
    Ok(certified)
}
