//! What a hub's listeners hand the byte streams they accept to: the server's SSH side, one
//! path from an accepted stream (raw TCP, or a WebSocket) to a registered connection.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

/// Serves the byte stream of a connection once it is admitted (see [`ServeSsh::admit`]).
pub(crate) type SshTicket = Box<
    dyn FnOnce(Box<dyn crate::proxy::Tunnel>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send,
>;

/// A server's SSH side, as every listener of it sees it: raw SSH over TCP, and SSH over
/// WebSocket. One path from an accepted byte stream to a registered connection.
pub(crate) trait ServeSsh: Send + Sync + 'static {
    /// Admits a connection from `remote` to its handshake (counted among the unauthenticated
    /// ones until it logs in), or says why not; the ticket serves its byte stream. `carrier`
    /// names how the bytes came (`ssh`, `websocket`, `ssh on the web port`) in the
    /// connection's log span.
    fn admit(&self, remote: SocketAddr, carrier: &'static str) -> Result<SshTicket, String>;

    /// Puts `access` in force for the logins from now on.
    fn reload_access(&self, access: crate::keys::Access) -> Result<(), crate::keys::AccessError>;
}
