use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use http::StatusCode;
use http::request::Parts;

use super::FromRequestParts;
use super::grants::Grants;
use super::rejection::PeerRejection;

/// Who is calling: the SSH identity the transport authenticated.
///
/// The transport puts a `Peer` into the extensions of every request it serves; the
/// [`TestClient`](crate::test::TestClient) puts the one the test chose. Extracting `Peer` from a
/// request that has none (for example over an unauthenticated carrier) answers 401;
/// take `Option<Peer>` to accept both.
#[derive(Clone, PartialEq, Eq)]
pub struct Peer(Arc<PeerInfo>);

/// The fields of a [`Peer`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerInfo {
    /// The SSH user name the caller logged in as.
    pub user: String,
    /// The SHA-256 fingerprint of the caller's public key, in OpenSSH's format (`SHA256:…`).
    pub fingerprint: String,
    /// The comment of the matching `authorized_keys` line, if it had one.
    pub comment: Option<String>,
    /// The caller's network address, if the carrier has one.
    pub remote_addr: Option<SocketAddr>,
    /// A number identifying the connection, unique within the serving process.
    pub connection_id: u64,
    /// The service name the caller announced (reverse mode), if any.
    pub service: Option<String>,
    /// The scopes its `authorized_keys` line grants (`rrssh-scopes="…"`).
    pub scopes: Grants,
    /// The groups its `authorized_keys` line puts it in (`rrssh-groups="…"`).
    pub groups: Grants,
    /// The service names it may register on a hub (`rrssh-services="…"`); `None`: the line has
    /// no such option (the hub's open registration decides).
    pub services: Option<Grants>,
    /// The OpenSSH certificate it logged in with, if it used one.
    pub certificate: Option<CertificateInfo>,
}

/// What an OpenSSH user certificate a caller logged in with says (`ssh-keygen -L` shows the
/// same).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificateInfo {
    /// Its key id (`ssh-keygen -I`), which sshd logs too.
    pub key_id: String,
    /// Its serial number.
    pub serial: u64,
    /// The principals it names.
    pub principals: Vec<String>,
    /// When it starts to be valid (`None`: always was).
    pub valid_after: Option<std::time::SystemTime>,
    /// When it stops being valid (`None`: never).
    pub valid_before: Option<std::time::SystemTime>,
    /// The SHA-256 fingerprint of the CA that signed it.
    pub ca: String,
    /// The certificate itself, in OpenSSH's one-line format (what a hub renews).
    pub openssh: String,
}

impl PeerInfo {
    /// A peer with this user and fingerprint and no other information.
    pub fn new(user: impl Into<String>, fingerprint: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            fingerprint: fingerprint.into(),
            comment: None,
            remote_addr: None,
            connection_id: 0,
            service: None,
            scopes: Grants::default(),
            groups: Grants::default(),
            services: None,
            certificate: None,
        }
    }

    /// Sets the granted scopes.
    #[must_use]
    pub fn scopes(mut self, scopes: Grants) -> Self {
        self.scopes = scopes;
        self
    }

    /// Sets the groups.
    #[must_use]
    pub fn groups(mut self, groups: Grants) -> Self {
        self.groups = groups;
        self
    }

    /// Sets the key comment.
    #[must_use]
    pub fn comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }

    /// Sets the remote address.
    #[must_use]
    pub fn remote_addr(mut self, addr: SocketAddr) -> Self {
        self.remote_addr = Some(addr);
        self
    }

    /// Sets the connection id.
    #[must_use]
    pub fn connection_id(mut self, id: u64) -> Self {
        self.connection_id = id;
        self
    }

    /// Sets the announced service name.
    #[must_use]
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.service = Some(name.into());
        self
    }
}

impl Peer {
    /// Wraps the peer's fields; cloning a `Peer` afterwards is cheap.
    pub fn new(info: PeerInfo) -> Self {
        Self(Arc::new(info))
    }

    /// The SSH user name.
    pub fn user(&self) -> &str {
        &self.0.user
    }

    /// The public key's SHA-256 fingerprint (`SHA256:…`).
    pub fn fingerprint(&self) -> &str {
        &self.0.fingerprint
    }

    /// The `authorized_keys` comment of the key, if any.
    pub fn comment(&self) -> Option<&str> {
        self.0.comment.as_deref()
    }

    /// The OpenSSH certificate it logged in with, if any: its key id, serial, principals,
    /// validity and CA.
    pub fn certificate(&self) -> Option<&CertificateInfo> {
        self.0.certificate.as_ref()
    }

    /// The caller's network address, if known.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.0.remote_addr
    }

    /// The connection id.
    pub fn connection_id(&self) -> u64 {
        self.0.connection_id
    }

    /// The service name the caller announced, if any.
    pub fn service(&self) -> Option<&str> {
        self.0.service.as_deref()
    }

    /// The scopes its key is granted.
    pub fn scopes(&self) -> &Grants {
        &self.0.scopes
    }

    /// The groups its key is in.
    pub fn groups(&self) -> &Grants {
        &self.0.groups
    }

    /// Whether its key is granted `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.0.scopes.grants(scope)
    }

    /// Whether its key's `rrssh-services` list names `name` (true without the option; the hub
    /// then also applies its reservations and open-registration setting).
    pub fn may_serve(&self, name: &str) -> bool {
        self.0.services.as_ref().is_none_or(|s| s.grants(name))
    }

    /// All fields.
    pub fn info(&self) -> &PeerInfo {
        &self.0
    }
}

impl fmt::Debug for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = PeerRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, PeerRejection> {
        parts.extensions.get::<Peer>().cloned().ok_or_else(|| {
            PeerRejection::new(
                StatusCode::UNAUTHORIZED,
                "this call has no authenticated SSH peer",
            )
        })
    }
}
