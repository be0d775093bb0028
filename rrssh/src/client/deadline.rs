//! A default deadline for every call of a client.

use std::task::{Context, Poll};
use std::time::Duration;

use tower_layer::Layer;
use tower_service::Service;

use crate::Request;
use crate::extract::TIMEOUT_HEADER;

/// Gives every call that has no deadline of its own this time budget; the budget travels with
/// the call (`rrssh-timeout`), so the server stops the handler when it runs out, and the
/// client gives up at the same time ([`Error::Timeout`](super::Error::Timeout)).
///
/// ```
/// use std::time::Duration;
/// use rrssh::client::DefaultDeadlineLayer;
/// use tower::ServiceBuilder;
///
/// # fn wrap(client: rrssh::test::TestClient) {
/// let client = ServiceBuilder::new()
///     .layer(DefaultDeadlineLayer::new(Duration::from_secs(5)))
///     .service(client);
/// # let _ = client; }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct DefaultDeadlineLayer {
    budget: Duration,
}

impl DefaultDeadlineLayer {
    /// Calls without a deadline get `budget`.
    pub fn new(budget: Duration) -> Self {
        Self { budget }
    }
}

impl<S> Layer<S> for DefaultDeadlineLayer {
    type Service = DefaultDeadline<S>;

    fn layer(&self, inner: S) -> DefaultDeadline<S> {
        DefaultDeadline {
            inner,
            budget: self.budget,
        }
    }
}

/// The service of [`DefaultDeadlineLayer`].
#[derive(Debug, Clone)]
pub struct DefaultDeadline<S> {
    inner: S,
    budget: Duration,
}

impl<S: Service<Request>> Service<Request> for DefaultDeadline<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> S::Future {
        if !req.headers().contains_key(TIMEOUT_HEADER) {
            let ms = crate::proto::Budget::from_duration(self.budget).to_header_value();
            req.headers_mut().insert(TIMEOUT_HEADER, ms);
        }
        self.inner.call(req)
    }
}
