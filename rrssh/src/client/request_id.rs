//! Request ids: the client gives each call an id that the server's trace span shows.

use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use http::HeaderValue;
use tower_layer::Layer;
use tower_service::Service;

use crate::Request;

/// The header carrying a call's request id (passed to the handler unchanged).
pub const REQUEST_ID_HEADER: &str = "rrssh-request-id";

/// Gives every call without an `rrssh-request-id` header a fresh id (16 hex digits, unique
/// within the process and unlikely to repeat across processes), and logs it at `debug`. On the
/// server, [`trace::call_span`](crate::trace::call_span) puts it into the call's span, so one
/// id follows a call from client to server logs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl RequestIdLayer {
    /// The layer.
    pub fn new() -> Self {
        Self
    }
}

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestId<S>;

    fn layer(&self, inner: S) -> RequestId<S> {
        RequestId { inner }
    }
}

/// The service of [`RequestIdLayer`].
#[derive(Debug, Clone)]
pub struct RequestId<S> {
    inner: S,
}

/// A new id: a splitmix64 of a time-seeded process counter.
pub fn new_request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        t ^ u64::from(std::process::id()).rotate_left(32)
    });
    let mut z = seed.wrapping_add(
        COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15),
    );
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    format!("{:016x}", z ^ (z >> 31))
}

impl<S: Service<Request>> Service<Request> for RequestId<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> S::Future {
        if !req.headers().contains_key(REQUEST_ID_HEADER) {
            let id = new_request_id();
            tracing::debug!(request_id = %id, method = %req.method(), uri = %req.uri(), "call");
            if let Ok(v) = HeaderValue::from_str(&id) {
                req.headers_mut().insert(REQUEST_ID_HEADER, v);
            }
        }
        self.inner.call(req)
    }
}
