//! Testing handlers and routers in-process, without a network.

use std::convert::Infallible;
use std::fmt;
use std::task::{Context, Poll};

use tower_service::Service;

use crate::extract::{Peer, PeerInfo};
use crate::routing::RouterFuture;
use crate::{Request, Response, Router};

/// A client that drives a [`Router`] in-process.
///
/// It implements [`Call`](crate::client::Call), so typed calls and the untyped builder work on
/// it exactly as on a network client. Each request carries the [`Peer`] the test chose
/// (by default user `test` with fingerprint `SHA256:test`).
///
/// ```
/// use rrssh::{get, routes, Router, Peer, test::TestClient};
///
/// #[get("/whoami")]
/// async fn whoami(peer: Peer) -> String {
///     peer.user().to_owned()
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rrssh::client::Error> {
/// let client = TestClient::new(Router::new().mount(routes![whoami]));
/// assert_eq!(whoami::call(&client).await?, "test");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TestClient {
    router: Router,
    peer: Option<Peer>,
}

impl TestClient {
    /// A client for `router`, calling as the default test peer.
    pub fn new(router: Router) -> Self {
        Self {
            router,
            peer: Some(Peer::new(PeerInfo::new("test", "SHA256:test"))),
        }
    }

    /// Calls as this peer.
    #[must_use]
    pub fn with_peer(mut self, peer: PeerInfo) -> Self {
        self.peer = Some(Peer::new(peer));
        self
    }

    /// Calls with no authenticated peer (as over an unauthenticated carrier).
    #[must_use]
    pub fn without_peer(mut self) -> Self {
        self.peer = None;
        self
    }
}

impl fmt::Debug for TestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestClient")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl Service<Request> for TestClient {
    type Response = Response;
    type Error = Infallible;
    type Future = RouterFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request) -> RouterFuture {
        if let Some(peer) = &self.peer {
            req.extensions_mut().insert(peer.clone());
        }
        self.router.call(req)
    }
}
