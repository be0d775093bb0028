//! Certificates from an ACME authority, obtained and renewed in the background (see [`Acme`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use rustls::sign::CertifiedKey;
use tokio::sync::watch;

use super::{ServerCertificate, TlsError};

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// How long before its end a certificate is renewed, at most (a third of its lifetime if that
/// is shorter).
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// The first wait after a failed attempt; it doubles up to `MAX_RETRY`.
const FIRST_RETRY: Duration = Duration::from_secs(30);
const MAX_RETRY: Duration = Duration::from_secs(6 * 3600);

/// A certificate from an ACME authority (RFC 8555: Let's Encrypt, or a private one), obtained
/// for a web listener's names by the TLS-ALPN-01 challenge (RFC 8737) on the listener's own
/// port, kept in a cache directory, and renewed before it expires.
///
/// ```no_run
/// # async fn run(hub: rrssh::Hub) -> Result<(), Box<dyn std::error::Error>> {
/// use rrssh::tls::{Acme, LETS_ENCRYPT};
/// use rrssh::websocket::WebListener;
///
/// let (certificate, acme) = Acme::new(LETS_ENCRYPT, ["hub.example.com"], "/var/lib/rrssh/acme")
///     .contact("ops@example.com")
///     .start()?;
/// WebListener::bind("0.0.0.0:443").await?.tls(certificate).serve(&hub)?;
/// acme.issued().await?; // the first certificate, unless the cache held one
/// # Ok(()) }
/// ```
///
/// The ACME protocol is `instant-acme`'s; the challenge certificates are `rcgen`'s. The cache
/// holds the account's credentials (`account.json`), the certificate chain (`cert.pem`) and its
/// key (`key.pem`, mode 0600), and the names they are for (`names`): a restart serves the cached
/// certificate at once and asks for a new one only when it nears its end (a third of its
/// lifetime before, at most 30 days) or the names changed. A failed attempt is tried again after
/// 30 s, doubling up to 6 h, while the old certificate, if any, is still served.
#[derive(Debug, Clone)]
pub struct Acme {
    directory: String,
    names: Vec<String>,
    contacts: Vec<String>,
    cache: PathBuf,
    directory_ca: Option<PathBuf>,
}

/// A certificate could not be obtained.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcmeError {
    /// The authority answered with an error, or could not be reached.
    #[error("ACME: {0}")]
    Protocol(#[from] instant_acme::Error),
    /// The authority did not validate a name, or the order ended otherwise than issued.
    #[error("ACME: {0}")]
    Refused(String),
    /// The cache directory could not be read or written.
    #[error("ACME cache {path}: {source}")]
    Cache {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A certificate or key could not be made or used.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Where obtaining the certificate stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcmeState {
    /// No certificate yet: the first is being obtained.
    Pending,
    /// A certificate is served, valid until `not_after`.
    Issued {
        /// Its end.
        not_after: SystemTime,
    },
    /// The last attempt failed; the next starts after a wait (doubling from 30 s to 6 h).
    Failed {
        /// Why.
        error: String,
    },
}

/// The task that obtains and renews the certificate; dropping it stops renewing.
#[derive(Debug)]
pub struct AcmeTask {
    state: watch::Receiver<AcmeState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AcmeTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AcmeTask {
    /// Where it stands now.
    pub fn state(&self) -> AcmeState {
        self.state.borrow().clone()
    }

    /// Waits for a certificate to be served; the first failure is returned as an error (the
    /// task goes on retrying).
    pub async fn issued(&self) -> Result<SystemTime, AcmeError> {
        let mut state = self.state.clone();
        loop {
            match state.borrow_and_update().clone() {
                AcmeState::Issued { not_after } => return Ok(not_after),
                AcmeState::Failed { error } => return Err(AcmeError::Refused(error)),
                AcmeState::Pending => {}
            }
            if state.changed().await.is_err() {
                return Err(AcmeError::Refused("the ACME task stopped".to_owned()));
            }
        }
    }

    /// Changes of state from now on.
    pub fn watch(&self) -> watch::Receiver<AcmeState> {
        self.state.clone()
    }
}

impl Acme {
    /// A certificate for `names` (DNS names) from the authority whose directory is at
    /// `directory` ([`LETS_ENCRYPT`], say), cached in `cache_dir`.
    pub fn new(
        directory: impl Into<String>,
        names: impl IntoIterator<Item = impl Into<String>>,
        cache_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            directory: directory.into(),
            names: names
                .into_iter()
                .map(|n| n.into().to_ascii_lowercase())
                .collect(),
            contacts: Vec::new(),
            cache: cache_dir.into(),
            directory_ca: None,
        }
    }

    /// An address the authority may write to about the certificates (expiry, revocation).
    #[must_use]
    pub fn contact(mut self, email: &str) -> Self {
        self.contacts.push(format!("mailto:{email}"));
        self
    }

    /// Trusts the CA in this PEM file for the authority's own HTTPS, instead of the system's
    /// authorities: for a private or test authority (Pebble, step-ca).
    #[must_use]
    pub fn directory_ca(mut self, pem_file: impl Into<PathBuf>) -> Self {
        self.directory_ca = Some(pem_file.into());
        self
    }

    /// The certificate to give a [`WebListener`](crate::websocket::WebListener) (the cached
    /// one, or none until the first is issued), and the task obtaining and renewing it. Needs a
    /// Tokio runtime.
    pub fn start(self) -> Result<(Arc<ServerCertificate>, AcmeTask), AcmeError> {
        if self.names.is_empty() {
            return Err(AcmeError::Refused(
                "no names to ask a certificate for".to_owned(),
            ));
        }
        std::fs::create_dir_all(&self.cache).map_err(|e| self.cache_error("", e))?;
        let (cert_file, key_file) = (self.cache.join("cert.pem"), self.cache.join("key.pem"));
        let cached = self.cached_names().as_deref() == Some(&self.names[..]);
        let certificate = match ServerCertificate::load(&cert_file, &key_file) {
            Ok(c) if cached => c,
            _ => ServerCertificate::pending(cert_file, key_file),
        };
        let (tx, state) = watch::channel(AcmeState::Pending);
        let task = tokio::spawn(run(self, certificate.clone(), tx));
        Ok((certificate, AcmeTask { state, task }))
    }

    fn cache_error(&self, file: &str, source: std::io::Error) -> AcmeError {
        AcmeError::Cache {
            path: self.cache.join(file),
            source,
        }
    }

    fn cached_names(&self) -> Option<Vec<String>> {
        let text = std::fs::read_to_string(self.cache.join("names")).ok()?;
        Some(text.lines().map(str::to_owned).collect())
    }

    /// Writes `file` in the cache whole or not at all (a temporary file, renamed).
    fn write(&self, file: &str, contents: &[u8], private: bool) -> Result<(), AcmeError> {
        use std::io::Write as _;
        let tmp = self.cache.join(format!(".{file}.tmp"));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(if private { 0o600 } else { 0o644 });
        }
        let result = options
            .open(&tmp)
            .and_then(|mut f| f.write_all(contents).and_then(|()| f.sync_all()))
            .and_then(|()| std::fs::rename(&tmp, self.cache.join(file)));
        result.map_err(|e| self.cache_error(file, e))
    }

    /// The account: from the cache, or made now and cached.
    async fn account(&self) -> Result<Account, AcmeError> {
        let builder = || match &self.directory_ca {
            Some(ca) => Account::builder_with_root(ca),
            None => Account::builder(),
        };
        let file = self.cache.join("account.json");
        if let Ok(text) = std::fs::read(&file)
            && let Ok(credentials) = serde_json::from_slice::<AccountCredentials>(&text)
        {
            return Ok(builder()?.from_credentials(credentials).await?);
        }
        let contacts: Vec<&str> = self.contacts.iter().map(String::as_str).collect();
        let (account, credentials) = builder()?
            .create(
                &NewAccount {
                    contact: &contacts,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.directory.clone(),
                None,
            )
            .await?;
        let json = serde_json::to_vec(&credentials)
            .map_err(|e| self.cache_error("account.json", e.into()))?;
        self.write("account.json", &json, true)?;
        Ok(account)
    }

    /// Orders a certificate, answers its challenges on `certificate`, and writes it to the
    /// cache; then `certificate` serves it.
    async fn issue(&self, certificate: &ServerCertificate) -> Result<(), AcmeError> {
        let account = self.account().await?;
        let identifiers: Vec<Identifier> =
            self.names.iter().cloned().map(Identifier::Dns).collect();
        let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
        let answering = Answering(certificate);
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization?;
            match authorization.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => return Err(AcmeError::Refused(format!("an authorization is {other:?}"))),
            }
            let mut challenge = authorization
                .challenge(ChallengeType::TlsAlpn01)
                .ok_or_else(|| AcmeError::Refused("no tls-alpn-01 challenge offered".to_owned()))?;
            let Identifier::Dns(name) = challenge.identifier().identifier.clone() else {
                return Err(AcmeError::Refused(
                    "a challenge for something not a DNS name".to_owned(),
                ));
            };
            let key =
                challenge_certificate(&name, challenge.key_authorization().digest().as_ref())?;
            answering.0.set_challenge(name, key);
            challenge.set_ready().await?;
        }
        let status = order.poll_ready(&RetryPolicy::default()).await?;
        if status != OrderStatus::Ready {
            return Err(AcmeError::Refused(format!(
                "the order is {status:?}, not ready: a name was not validated"
            )));
        }
        drop(answering);
        let key = order.finalize().await?;
        let chain = order.poll_certificate(&RetryPolicy::default()).await?;
        self.write("key.pem", key.as_bytes(), true)?;
        self.write("cert.pem", chain.as_bytes(), false)?;
        self.write("names", (self.names.join("\n") + "\n").as_bytes(), false)?;
        certificate.reload()?;
        Ok(())
    }
}

/// Challenges answered while it lives.
struct Answering<'a>(&'a ServerCertificate);

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        self.0.clear_challenges();
    }
}

/// The self-signed certificate answering a TLS-ALPN-01 challenge for `name`: the name, and the
/// key authorization's digest in the critical `acmeIdentifier` extension.
fn challenge_certificate(name: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, AcmeError> {
    let tls = |e: &dyn std::fmt::Display| TlsError::new("the ACME challenge certificate", e);
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).map_err(|e| tls(&e))?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let key = rcgen::KeyPair::generate().map_err(|e| tls(&e))?;
    let cert = params.self_signed(&key).map_err(|e| tls(&e))?;
    let der =
        rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| tls(&e))?;
    let signer = super::provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| tls(&e))?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signer,
    )))
}

/// When the leaf of the chain in `cert_file` starts and ends.
fn validity(cert_file: &Path) -> Option<(SystemTime, SystemTime)> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let leaf = CertificateDer::pem_file_iter(cert_file)
        .ok()?
        .next()?
        .ok()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&leaf).ok()?;
    let at = |t: i64| SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(t).unwrap_or(0));
    let v = parsed.validity();
    Some((at(v.not_before.timestamp()), at(v.not_after.timestamp())))
}

/// When to renew a certificate valid from `from` to `to`.
fn renewal_time(from: SystemTime, to: SystemTime) -> SystemTime {
    let lifetime = to.duration_since(from).unwrap_or_default();
    to - RENEW_BEFORE.min(lifetime / 3)
}

async fn run(acme: Acme, certificate: Arc<ServerCertificate>, state: watch::Sender<AcmeState>) {
    let cert_file = acme.cache.join("cert.pem");
    let mut retry = FIRST_RETRY;
    loop {
        if !certificate.leaf().is_empty()
            && let Some((from, to)) = validity(&cert_file)
        {
            state.send_replace(AcmeState::Issued { not_after: to });
            let wait = renewal_time(from, to)
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            if !wait.is_zero() {
                tracing::info!(names = ?acme.names, renew_in_s = wait.as_secs(), "ACME certificate served");
                tokio::time::sleep(wait).await;
            }
        }
        match acme.issue(&certificate).await {
            Ok(()) => {
                retry = FIRST_RETRY;
                tracing::info!(names = ?acme.names, "ACME certificate issued");
            }
            Err(e) => {
                tracing::warn!(names = ?acme.names, error = %e, retry_in_s = retry.as_secs(), "ACME certificate not issued");
                state.send_replace(AcmeState::Failed {
                    error: e.to_string(),
                });
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_comes_a_third_of_the_lifetime_before_the_end_at_most_30_days() {
        let day = Duration::from_secs(24 * 3600);
        let t0 = SystemTime::UNIX_EPOCH + 1000 * day;
        // Let's Encrypt's 90 days: 30 days before the end.
        assert_eq!(renewal_time(t0, t0 + 90 * day), t0 + 60 * day);
        // A year: still 30 days before.
        assert_eq!(renewal_time(t0, t0 + 365 * day), t0 + 335 * day);
        // Six days (short-lived certificates): two days before.
        assert_eq!(renewal_time(t0, t0 + 6 * day), t0 + 4 * day);
    }
}
