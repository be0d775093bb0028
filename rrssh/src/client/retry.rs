//! A retry policy for clients: only idempotent verbs, only when the call did not get through.

use std::time::Duration;

use http::{Method, StatusCode};
use tokio::time::Instant;

use super::Backoff;
use super::Error;
use crate::extract::TIMEOUT_HEADER;
use crate::{Body, Request, Response};

/// A [`tower::retry::Policy`] for rrssh clients.
///
/// It retries a call only if its verb is idempotent (`GET`, `HEAD`, `PUT`, `DELETE`,
/// `OPTIONS`), its body is in memory (a streaming body cannot be sent twice), and it failed in
/// a way that says "try again": [`Error::Unavailable`] (the connection was lost or is
/// reconnecting) or `503` (the server is shutting down or shedding load). It waits between
/// attempts with [`Backoff`] (full jitter), and never past the call's deadline: each retry gets
/// the budget that is left.
///
/// ```
/// use rrssh::client::{CallExt, RetryPolicy};
/// use tower::ServiceBuilder;
///
/// # fn wrap(client: rrssh::test::TestClient) {
/// let client = ServiceBuilder::new()
///     .retry(RetryPolicy::new(3))
///     .service(client);
/// # let _ = client; }
/// ```
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    retries_left: u32,
    attempt: u32,
    backoff: Backoff,
    deadline: Option<Instant>,
}

impl RetryPolicy {
    /// At most `max_retries` retries per call, with 50 ms × 2 backoff capped at 2 s.
    pub fn new(max_retries: u32) -> Self {
        Self {
            retries_left: max_retries,
            attempt: 0,
            backoff: Backoff::default()
                .initial(Duration::from_millis(50))
                .max(Duration::from_secs(2)),
            deadline: None,
        }
    }

    /// Waits between attempts with this backoff instead.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Whether a request with this method may be retried.
    pub fn is_idempotent(method: &Method) -> bool {
        matches!(
            *method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        )
    }

    fn should_retry(result: &Result<Response, Error>) -> bool {
        match result {
            Ok(res) => res.status() == StatusCode::SERVICE_UNAVAILABLE,
            Err(Error::Unavailable(_)) => true,
            Err(Error::Status { status, .. }) => *status == StatusCode::SERVICE_UNAVAILABLE,
            Err(_) => false,
        }
    }
}

impl tower::retry::Policy<Request, Response, Error> for RetryPolicy {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        req: &mut Request,
        result: &mut Result<Response, Error>,
    ) -> Option<Self::Future> {
        if self.retries_left == 0
            || !Self::is_idempotent(req.method())
            || !Self::should_retry(result)
        {
            return None;
        }
        let delay = self.backoff.delay(self.attempt);
        if let Some(deadline) = self.deadline {
            let left = deadline
                .checked_duration_since(Instant::now() + delay)
                .filter(|d| !d.is_zero())?;
            let ms = crate::proto::Budget::from_duration(left).to_header_value();
            req.headers_mut().insert(TIMEOUT_HEADER, ms);
        }
        self.retries_left -= 1;
        self.attempt += 1;
        tracing::debug!(method = %req.method(), uri = %req.uri(), attempt = self.attempt, ?delay, "retrying");
        Some(tokio::time::sleep(delay))
    }

    fn clone_request(&mut self, req: &Request) -> Option<Request> {
        if !Self::is_idempotent(req.method()) {
            return None;
        }
        let body = req.body().as_full()?;
        if self.deadline.is_none() {
            self.deadline = crate::proto::Budget::of_headers(req.headers())
                .ok()
                .flatten()
                .map(|b| Instant::now() + b.as_duration());
        }
        let mut out = Request::new(Body::from_bytes(bytes::Bytes::copy_from_slice(body)));
        *out.method_mut() = req.method().clone();
        *out.uri_mut() = req.uri().clone();
        *out.version_mut() = req.version();
        *out.headers_mut() = req.headers().clone();
        *out.extensions_mut() = req.extensions().clone();
        Some(out)
    }
}
