//! What a [`ReconnectingClient`](super::ReconnectingClient) dials each time it connects: any
//! carrier, through one trait.

use std::future::Future;
use std::pin::Pin;

use super::{Client, ClientBuilder, ConnectError};

/// A connection being opened.
pub type Dialing = Pin<Box<dyn Future<Output = Result<Client, ConnectError>> + Send>>;

/// A way to open a connection, again each time one is lost: what
/// [`ReconnectingClient::new`](super::ReconnectingClient::new) keeps connected.
///
/// [`ClientBuilder`] is one (SSH, directly, over WebSocket, through proxies and jump hosts,
/// failing over between its addresses); so is any function returning a connection, which
/// covers the other carriers:
///
/// ```no_run
/// # async fn run() {
/// use rrssh::Client;
/// use rrssh::transport::{Backoff, ReconnectingClient};
///
/// // rrssh over a spawned `ssh`, with the user's ~/.ssh/config, agent and jump hosts.
/// let over_ssh = ReconnectingClient::new(|| Client::over_ssh("ops@db1"), Backoff::default());
/// // rrssh over plain TCP, inside a network that is trusted already.
/// let over_tcp = ReconnectingClient::new(|| Client::tcp("10.0.0.7:8023"), Backoff::default());
/// # }
/// ```
pub trait Dial: Send + Sync + 'static {
    /// How many places it dials in turn (hubs to fail over between); 1 unless told.
    fn places(&self) -> usize {
        1
    }

    /// Opens a connection to place `index`, below [`places`](Self::places).
    fn dial(&self, index: usize) -> Dialing;

    /// The certificates each connection keeps renewed, if any
    /// ([`ClientBuilder::renew_certificates`]).
    fn renewed_certificates(&self) -> Option<Renewed> {
        None
    }
}

/// Certificates shared by the connections of one client, replaced as they are renewed.
pub type Renewed = std::sync::Arc<std::sync::Mutex<Vec<crate::keys::Certificate>>>;

impl Dial for ClientBuilder {
    fn places(&self) -> usize {
        self.addresses().len()
    }

    fn renewed_certificates(&self) -> Option<Renewed> {
        self.renewed()
    }

    fn dial(&self, index: usize) -> Dialing {
        let addresses = self.addresses();
        let addr = addresses[index % addresses.len()].clone();
        Box::pin(self.clone().at(addr).connect())
    }
}

impl<F, Fut> Dial for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Client, ConnectError>> + Send + 'static,
{
    fn dial(&self, _index: usize) -> Dialing {
        Box::pin(self())
    }
}
