//! Signing OpenSSH certificates with a CA key, as `ssh-keygen -s` does: user certificates that
//! log in through `cert-authority` lines and `trusted_user_ca_keys`, and host certificates that
//! clients trust through `@cert-authority`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use russh::keys::ssh_key::certificate::{Builder, CertType};
use russh::keys::{Certificate, PrivateKey, PublicKey};

use super::KeyError;

/// The extensions `ssh-keygen -s` gives a user certificate unless told otherwise.
pub const DEFAULT_USER_EXTENSIONS: &[&str] = &[
    "permit-X11-forwarding",
    "permit-agent-forwarding",
    "permit-port-forwarding",
    "permit-pty",
    "permit-user-rc",
];

/// The route a server holding a CA key renews that CA's certificates at
/// (`Server::renew_certificates`).
pub const RENEW_PATH: &str = "/.well-known/rrssh/certificate";
/// The scope a certificate (or its CA's line) must grant for its renewal.
pub const RENEW_SCOPE: &str = "certificate:renew";

/// How far back a certificate's validity starts, for clocks a little behind the CA's.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// What a CA puts in a certificate.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CertificateRequest {
    /// A host certificate (`-h`) rather than a user certificate.
    pub host: bool,
    /// The key id (`-I`), which servers log.
    pub key_id: String,
    /// The principals (`-n`): user names, or host names for a host certificate.
    pub principals: Vec<String>,
    /// How long it is valid from now (it starts five minutes back, for clocks behind).
    pub valid_for: Duration,
    /// Its serial number (`-z`).
    pub serial: u64,
    /// The `force-command` critical option.
    pub force_command: Option<String>,
    /// The `source-address` critical option (addresses and CIDR blocks, comma-separated).
    pub source_address: Option<String>,
    /// The extensions of a user certificate ([`DEFAULT_USER_EXTENSIONS`] unless changed):
    /// `name`, or `name=value` (rrssh's grants: `services@rrssh=billing`, see
    /// [`CERTIFICATE_GRANTS`](super::CERTIFICATE_GRANTS)).
    pub extensions: Vec<String>,
}

impl CertificateRequest {
    /// A user certificate for `principals`, valid for `valid_for`, with `ssh-keygen`'s default
    /// extensions.
    pub fn user(
        key_id: impl Into<String>,
        principals: impl IntoIterator<Item = impl Into<String>>,
        valid_for: Duration,
    ) -> Self {
        Self {
            host: false,
            key_id: key_id.into(),
            principals: principals.into_iter().map(Into::into).collect(),
            valid_for,
            serial: 0,
            force_command: None,
            source_address: None,
            extensions: DEFAULT_USER_EXTENSIONS
                .iter()
                .map(|e| (*e).to_owned())
                .collect(),
        }
    }

    /// A host certificate for the host names `principals`, valid for `valid_for`.
    pub fn host(
        key_id: impl Into<String>,
        principals: impl IntoIterator<Item = impl Into<String>>,
        valid_for: Duration,
    ) -> Self {
        Self {
            host: true,
            extensions: Vec::new(),
            ..Self::user(key_id, principals, valid_for)
        }
    }
}

/// Signs `key` into a certificate with the CA key `ca`. A certificate must name at least one
/// principal: one naming none would be valid for every name.
pub fn sign_certificate(
    ca: &PrivateKey,
    key: &PublicKey,
    request: &CertificateRequest,
) -> Result<Certificate, KeyError> {
    let bad = |message: String| KeyError::Format {
        path: "the certificate request".into(),
        message,
    };
    if request.principals.is_empty() {
        return Err(bad("a certificate must name at least one principal".into()));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let after = now.saturating_sub(BACKDATE.as_secs());
    let before = now.saturating_add(request.valid_for.as_secs());
    let sig = |e: russh::keys::ssh_key::Error| bad(e.to_string());
    let mut builder = Builder::new_with_random_nonce(
        &mut russh::keys::key::safe_rng(),
        key.key_data().clone(),
        after,
        before,
    )
    .map_err(sig)?;
    builder
        .serial(request.serial)
        .map_err(sig)?
        .key_id(request.key_id.clone())
        .map_err(sig)?
        .cert_type(if request.host {
            CertType::Host
        } else {
            CertType::User
        })
        .map_err(sig)?;
    for p in &request.principals {
        builder.valid_principal(p.clone()).map_err(sig)?;
    }
    if let Some(command) = &request.force_command {
        builder
            .critical_option("force-command", command.clone())
            .map_err(sig)?;
    }
    if let Some(addresses) = &request.source_address {
        builder
            .critical_option("source-address", addresses.clone())
            .map_err(sig)?;
    }
    if !request.host {
        for e in &request.extensions {
            let (name, value) = e.split_once('=').unwrap_or((e, ""));
            builder.extension(name, value).map_err(sig)?;
        }
    }
    builder.sign(ca).map_err(sig)
}

/// The same certificate again, signed by `ca` for `valid_for` from now (starting five minutes
/// back): the same key, principals, key id, serial (so a KRL that revokes one revokes both),
/// critical options and extensions. Refused for a certificate `ca` did not sign.
pub fn renew_certificate(
    ca: &PrivateKey,
    cert: &Certificate,
    valid_for: Duration,
) -> Result<Certificate, KeyError> {
    let bad = |message: String| KeyError::Format {
        path: "the certificate to renew".into(),
        message,
    };
    if cert.signature_key() != ca.public_key().key_data() {
        return Err(bad("it was not signed by this CA".into()));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let sig = |e: russh::keys::ssh_key::Error| bad(e.to_string());
    let mut builder = Builder::new_with_random_nonce(
        &mut russh::keys::key::safe_rng(),
        cert.public_key().clone(),
        now.saturating_sub(BACKDATE.as_secs()),
        now.saturating_add(valid_for.as_secs()),
    )
    .map_err(sig)?;
    builder
        .serial(cert.serial())
        .map_err(sig)?
        .key_id(cert.key_id())
        .map_err(sig)?
        .cert_type(cert.cert_type())
        .map_err(sig)?;
    if cert.valid_principals().is_empty() {
        return Err(bad("it names no principal".into()));
    }
    for p in cert.valid_principals() {
        builder.valid_principal(p.clone()).map_err(sig)?;
    }
    for (name, value) in cert.critical_options().iter() {
        builder
            .critical_option(name.clone(), value.clone())
            .map_err(sig)?;
    }
    for (name, value) in cert.extensions().iter() {
        builder
            .extension(name.clone(), value.clone())
            .map_err(sig)?;
    }
    builder.sign(ca).map_err(sig)
}

/// What a user or host certificate must be whoever trusts its CA: of the expected type, valid
/// now, and signed by the key it names as its CA. Returns that CA's SHA-256 fingerprint, or why
/// not.
pub(crate) fn check_signed_now(
    cert: &Certificate,
    kind: CertType,
    now: SystemTime,
) -> Result<russh::keys::ssh_key::Fingerprint, String> {
    if cert.cert_type() != kind {
        return Err(match kind {
            CertType::User => "a host certificate cannot log in".into(),
            CertType::Host => "it is not a host certificate".into(),
        });
    }
    let at = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if at < cert.valid_after() {
        return Err("the certificate is not valid yet".into());
    }
    if at >= cert.valid_before() {
        return Err("the certificate has expired".into());
    }
    let ca = PublicKey::new(cert.signature_key().clone(), "");
    let fingerprint = ca.fingerprint(russh::keys::HashAlg::Sha256);
    cert.validate_at(at, [&fingerprint])
        .map_err(|e| format!("the certificate's signature does not verify: {e}"))?;
    Ok(fingerprint)
}
