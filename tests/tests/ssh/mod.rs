//! End to end over real russh connections on 127.0.0.1, forward and reverse mode.

mod api;
mod auth;
mod byte_stream;
mod certificates;
mod faults;
mod hardening;
mod isolated;
mod layers;
mod lifecycle;
pub(crate) mod limits;
mod modes;
mod names;
pub(crate) mod proxy;
mod reconnect;
mod soak;
pub(crate) mod terminal;
mod tunnel;
mod watch;

use std::time::Duration;

use rrssh::keys::{AuthorizedKeys, HostKeyPolicy, PrivateKey, generate_ed25519};
use rrssh::{Client, Hub, Router, Server};

/// Keys for one test: a host key and a client key.
pub(crate) struct Keys {
    pub(crate) host: PrivateKey,
    pub(crate) client: PrivateKey,
}

impl Keys {
    pub(crate) fn new() -> Self {
        Self {
            host: generate_ed25519("host"),
            client: generate_ed25519("ada@test"),
        }
    }
}

/// A server on an ephemeral port that authorizes `keys.client`.
pub(crate) async fn server(keys: &Keys, router: Option<Router>) -> Hub {
    let mut s = server_builder(keys);
    if let Some(r) = router {
        s = s.router(r);
    }
    s.bind("127.0.0.1:0").await.expect("bind")
}

/// A server with `keys.host` that authorizes `keys.client`, not yet bound.
pub(crate) fn server_builder(keys: &Keys) -> Server {
    Server::new()
        .host_key(keys.host.clone())
        .authorized_keys(
            AuthorizedKeys::from_keys([keys.client.public_key().clone()]).owned_by("ada"),
        )
        .auth_rejection_time(Duration::from_millis(10))
        .open_registration(true)
}

/// `keys.client` as the one authorized key of `ada`, with `options` on its line (`"pty "`).
pub(crate) fn authorized_with(keys: &Keys, options: &str) -> AuthorizedKeys {
    let line = format!(
        "{options}{}",
        keys.client.public_key().to_openssh().unwrap()
    );
    AuthorizedKeys::parse(&line, "authorized_keys")
        .unwrap()
        .owned_by("ada")
}

/// A client of `hub` authenticating with `keys.client`, pinning the host key.
pub(crate) fn client(keys: &Keys, hub: &Hub) -> rrssh::transport::ClientBuilder {
    client_to(keys, hub.local_addr())
}

/// A client of `addr` authenticating with `keys.client`, pinning the host key.
pub(crate) fn client_to(
    keys: &Keys,
    addr: std::net::SocketAddr,
) -> rrssh::transport::ClientBuilder {
    Client::builder(addr.to_string())
        .user("ada")
        .identity(keys.client.clone())
        .host_keys(HostKeyPolicy::Pinned(keys.host.public_key().clone()))
}

/// Waits until `cond` holds, up to `limit`.
pub(crate) async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = tokio::time::Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}
