//! The [`Cluster`] builder: how a hub reaches NATS, and which hubs it trusts.

use std::sync::Arc;
use std::time::Duration;

use russh::keys::{PrivateKey, PublicKey};

use super::auth;
use super::trust::HubKeys;

/// A key to sign with; `Debug` shows its fingerprint only.
#[derive(Clone)]
pub(super) struct SigningKey(Arc<PrivateKey>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fp = self
            .0
            .public_key()
            .fingerprint(russh::keys::HashAlg::Sha256);
        write!(f, "SigningKey({fp})")
    }
}

/// How a hub joins a cluster of hubs on NATS (see the [module docs](super)).
#[derive(Debug, Clone)]
#[must_use]
pub struct Cluster {
    /// The URL without its userinfo (safe to log).
    pub(super) url: String,
    pub(super) auth: auth::NatsAuth,
    pub(super) hub_id: String,
    pub(super) ttl: Duration,
    pub(super) default_timeout: Duration,
    /// The hubs whose signatures this hub accepts.
    pub(super) trusted: HubKeys,
    /// The key this hub signs with (default: the server's host key).
    pub(super) signing_key: Option<SigningKey>,
    pub(super) insecure: bool,
    pub(super) max_skew: Duration,
}

impl Cluster {
    /// Joins the cluster whose NATS server (with JetStream) is at `url`
    /// (`nats://127.0.0.1:4222`, or `tls://…` for TLS), under a random hub id. Credentials in
    /// the URL are used as NATS clients use them: `nats://user:password@host` and
    /// `nats://token@host` (percent-encoded); they are never logged.
    pub fn new(url: impl Into<String>) -> Self {
        let (url, creds) = auth::split_userinfo(&url.into());
        Self {
            url,
            auth: auth::NatsAuth::default().with_url(creds),
            hub_id: super::random_id(6),
            ttl: Duration::from_secs(3),
            default_timeout: Duration::from_secs(30),
            trusted: HubKeys::new(),
            signing_key: None,
            insecure: false,
            max_skew: Duration::from_secs(30),
        }
    }

    /// This hub's id in the cluster (letters, digits, `-` and `_`; default random).
    pub fn hub_id(mut self, id: impl Into<String>) -> Self {
        self.hub_id = id.into();
        self
    }

    /// How long a hub's names outlive its last heartbeat (default 3 s; heartbeats every third
    /// of it). A hub that dies is forgotten this long after, and its entries are deleted from
    /// the bucket ten times as long after.
    pub fn presence_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.max(Duration::from_millis(300));
        self
    }

    /// The deadline of a call through another hub that carries none (default 30 s).
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// This hub's id.
    pub fn id(&self) -> &str {
        &self.hub_id
    }

    /// Authenticates to NATS with a user and password (NATS `authorization { user, password }`).
    pub fn user_and_password(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.auth.user = Some((user.into(), password.into()));
        self.auth.token = None;
        self
    }

    /// Authenticates to NATS with a token (NATS `authorization { token }`).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.auth.token = Some(token.into());
        self.auth.user = None;
        self
    }

    /// Authenticates to NATS with an NKey: the user's seed (`SU…`).
    pub fn nkey(mut self, seed: impl Into<String>) -> Self {
        self.auth.nkey = Some(seed.into());
        self
    }

    /// Authenticates to NATS with a `.creds` file (a user JWT and its NKey seed, as `nsc`
    /// writes it); read when the hub connects.
    pub fn credentials_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.auth.creds = Some(path.into());
        self
    }

    /// Trusts this CA (a PEM file) for the NATS server's certificate, and requires TLS.
    pub fn tls_root_certificate(mut self, ca: impl Into<std::path::PathBuf>) -> Self {
        self.auth.tls_roots.push(ca.into());
        self
    }

    /// Presents this client certificate and key (PEM files) to the NATS server, and requires
    /// TLS.
    pub fn tls_client_certificate(
        mut self,
        cert: impl Into<std::path::PathBuf>,
        key: impl Into<std::path::PathBuf>,
    ) -> Self {
        self.auth.tls_client = Some((cert.into(), key.into()));
        self
    }

    /// Refuses to talk to NATS without TLS (also implied by the two settings above and by a
    /// `tls://` URL).
    pub fn require_tls(mut self, required: bool) -> Self {
        self.auth.tls_required = required;
        self
    }
}

impl Cluster {
    /// Trusts these hubs (see [`HubKeys`]): what they sign is accepted as theirs. A hub always
    /// trusts its own key for its own id; one that trusts no other hub refuses to start unless
    /// [`Cluster::insecure_unsigned`] says otherwise. May be given several times.
    pub fn trusted_hub_keys(mut self, keys: HubKeys) -> Self {
        self.trusted.extend(keys);
        self
    }

    /// Trusts `key` to sign as the hub `hub` (as one line of [`Cluster::trusted_hub_keys`]).
    pub fn trust_hub(self, hub: impl Into<String>, key: PublicKey) -> Self {
        self.trusted_hub_keys(HubKeys::new().with(hub, key))
    }

    /// The key this hub signs what it sends with (default: the server's Ed25519 host key, else
    /// its first host key). Its public half must be the one other hubs trust for this hub's id.
    pub fn signing_key(mut self, key: PrivateKey) -> Self {
        self.signing_key = Some(SigningKey(Arc::new(key)));
        self
    }

    /// Accepts what any NATS client sends as if a hub sent it: unsigned messages and entries,
    /// and ones signed by keys not trusted. For a NATS server only hubs can reach. This hub
    /// still signs what it sends, so hubs that trust its key accept it.
    pub fn insecure_unsigned(mut self) -> Self {
        self.insecure = true;
        self
    }

    /// How far a signed call's or heartbeat's time may be from this hub's clock (default 30 s):
    /// older ones are refused as replays; the replay cache holds call ids this long.
    pub fn max_clock_skew(mut self, skew: Duration) -> Self {
        self.max_skew = skew.max(Duration::from_secs(1));
        self
    }

    /// The key this hub signs with among the server's host keys, and a check of what it
    /// trusts: why the cluster cannot start, else the key.
    pub(super) fn signer(&self, host_keys: &[PrivateKey]) -> Result<Arc<PrivateKey>, String> {
        if !super::trust::valid_hub_id(&self.hub_id) {
            return Err(format!(
                "`{}` is not a hub id: letters, digits, `-` and `_`, at most 64",
                self.hub_id
            ));
        }
        let key = match &self.signing_key {
            Some(k) => k.0.clone(),
            None => host_keys
                .iter()
                .find(|k| k.algorithm() == russh::keys::Algorithm::Ed25519)
                .or_else(|| host_keys.first())
                .map(|k| Arc::new(k.clone()))
                .ok_or("the cluster needs a key to sign with: give Cluster::signing_key")?,
        };
        let mine = self.trusted.keys_of(&self.hub_id);
        if !mine.is_empty()
            && !mine
                .iter()
                .any(|k| k.key_data() == key.public_key().key_data())
        {
            return Err(format!(
                "the trusted hub keys list other keys for this hub (`{}`) than the one it signs with ({}): the other hubs would refuse what it sends",
                self.hub_id,
                key.public_key().fingerprint(russh::keys::HashAlg::Sha256)
            ));
        }
        if self.trusted.is_empty() && !self.insecure {
            return Err(format!(
                "the cluster trusts no hub's key: give the hubs' keys with Cluster::trusted_hub_keys (`rrssh hub --cluster-hub-keys FILE`, lines of `ssh-ed25519 AAAA… HUB-ID`), or accept unsigned messages with Cluster::insecure_unsigned (`--cluster-insecure-unsigned`); this hub signs with {}",
                PublicKey::new(key.public_key().key_data().clone(), "")
                    .to_openssh()
                    .map(|k| format!("{k} {}", self.hub_id))
                    .unwrap_or_default()
            ));
        }
        Ok(key)
    }
}
