//! A server's certificate and key, from PEM files, reloaded in place: connections already open
//! keep the certificate they shook hands with, new ones get the new one.

use std::collections::HashMap;
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
///
/// It also answers ACME's TLS-ALPN-01 challenges (RFC 8737) while [`Acme`](super::Acme)
/// obtains a certificate: a handshake asking for the protocol `acme-tls/1` gets the challenge's
/// certificate for the name it asks for, and nothing else is served on that connection.
pub struct ServerCertificate {
    cert_file: PathBuf,
    key_file: PathBuf,
    /// `None` until a certificate is first issued (an ACME certificate not cached yet).
    current: RwLock<Option<Arc<CertifiedKey>>>,
    /// TLS-ALPN-01 answers by server name: at most one per name being validated.
    challenges: RwLock<HashMap<String, Arc<CertifiedKey>>>,
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
            current: RwLock::new(Some(Arc::new(current))),
            challenges: RwLock::default(),
        }))
    }

    /// One to be read from these files once they exist (ACME writes them): until then,
    /// handshakes fail, but for ACME's challenges.
    #[cfg(feature = "acme")]
    pub(crate) fn pending(cert_file: PathBuf, key_file: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            cert_file,
            key_file,
            current: RwLock::new(None),
            challenges: RwLock::default(),
        })
    }

    /// Answers TLS-ALPN-01 handshakes for `name` with `key` until cleared.
    #[cfg(feature = "acme")]
    pub(crate) fn set_challenge(&self, name: String, key: Arc<CertifiedKey>) {
        let old = self
            .challenges
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, key);
        drop(old);
    }

    /// Stops answering every TLS-ALPN-01 challenge.
    #[cfg(feature = "acme")]
    pub(crate) fn clear_challenges(&self) {
        let old = std::mem::take(&mut *self.challenges.write().unwrap_or_else(|e| e.into_inner()));
        drop(old);
    }

    /// Reads the files again; on an error the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(read(&self.cert_file, &self.key_file)?);
        // The old one is dropped after the lock is released (handshakes in progress hold
        // their own reference).
        let old = self
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .replace(fresh);
        drop(old);
        Ok(())
    }

    /// The end-entity certificate in use (DER); empty before one is issued.
    pub fn leaf(&self) -> Vec<u8> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(|c| c.cert.first())
            .map(|c| c.to_vec())
            .unwrap_or_default()
    }

    /// A rustls server configuration presenting this certificate (HTTP/1.1 by ALPN, and
    /// `acme-tls/1` for ACME's challenges).
    pub(crate) fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(super::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::new("TLS", e))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec(), super::ACME_TLS_ALPN.to_vec()];
        // The server's order of cipher suites decides (AES-128-GCM first, see `provider`).
        config.ignore_client_order = true;
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for ServerCertificate {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let acme = hello
            .alpn()
            .is_some_and(|mut offered| offered.any(|p| p == super::ACME_TLS_ALPN));
        if acme {
            let name = hello.server_name()?.to_ascii_lowercase();
            return self
                .challenges
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&name)
                .cloned();
        }
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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
