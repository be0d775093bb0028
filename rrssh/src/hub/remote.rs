//! Peers held by other hubs of a cluster, as the registry sees them: a trait the cluster (the
//! `cluster` feature) implements, so the registry knows nothing of how hubs talk.

use std::future::Future;
use std::pin::Pin;

use crate::client::Error;
use crate::{Request, Response};

/// A service held by another hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotePeer {
    /// Its service name.
    pub name: String,
    /// The hub holding it.
    pub hub: String,
    /// Its key's fingerprint.
    pub fingerprint: String,
    /// The user it logged in as there.
    pub user: String,
}

/// A call to a peer on another hub.
pub(crate) type RemoteCall = Pin<Box<dyn Future<Output = Result<Response, Error>> + Send>>;

/// What starts with a server to share its registry with other hubs, and stops with it (a
/// cluster's node): given the server's host keys (to sign with) and its registry, which it
/// joins through [`Registry::set_remote`](super::Registry::set_remote). `Err` says why it cannot.
pub(crate) trait Backplane: Send + 'static {
    fn start(
        self: Box<Self>,
        host_keys: &[russh::keys::PrivateKey],
        registry: &super::Registry,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), String>;
}

/// What the registry asks of the cluster.
pub(crate) trait Remote: Send + Sync + 'static {
    /// This hub now holds `name` for the key `fingerprint`.
    fn published(&self, name: &str, fingerprint: &str, user: &str);
    /// This hub no longer holds `name`.
    fn withdrawn(&self, name: &str);
    /// Who holds `name` elsewhere, if another hub does.
    fn lookup(&self, name: &str) -> Option<RemotePeer>;
    /// Every peer other hubs hold.
    fn peers(&self) -> Vec<RemotePeer>;
    /// Calls `name` on the hub holding it; `None` if no hub does.
    fn call(&self, name: &str, req: Request) -> Option<RemoteCall>;
}
