use std::task::{Context, Poll};

use http::StatusCode;
use tower_service::Service;

use super::{AuthorizeFuture, Rule};
use crate::{ApiError, IntoResponse, Peer, Request, Response};

/// A service that answers 401 to calls without an authenticated [`Peer`], 403 to peers the
/// [`Rule`] does not allow, and passes the rest to the inner service.
#[derive(Debug, Clone)]
pub struct Authorize<S> {
    inner: S,
    rule: Rule,
}

impl<S> Authorize<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, rule: Rule) -> Self {
        Self { inner, rule }
    }

    /// The rule it applies.
    pub fn rule(&self) -> &Rule {
        &self.rule
    }
}

impl<S> Service<Request> for Authorize<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = AuthorizeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let Some(peer) = req.extensions().get::<Peer>() else {
            let e = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this call has no authenticated SSH peer",
            );
            return AuthorizeFuture::denied(e.into_response());
        };
        if self.rule.allows(peer) {
            return AuthorizeFuture::inner(self.inner.call(req));
        }
        crate::logging::limited("call-refused", || {
            tracing::warn!(
                user = %peer.user(),
                fingerprint = %peer.fingerprint(),
                method = %req.method(),
                path = %req.uri().path(),
                requires = %self.rule,
                "call refused"
            );
        });
        let e = ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "key {} (user `{}`) is not allowed here: requires {}",
                peer.fingerprint(),
                peer.user(),
                self.rule
            ),
        );
        AuthorizeFuture::denied(e.into_response())
    }
}
