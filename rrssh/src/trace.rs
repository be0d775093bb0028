//! Tracing for served calls, for tower-http's `TraceLayer`: one span per call with the method,
//! path, the caller's SSH user and key fingerprint and its request id, and the status and
//! latency recorded when the response is ready.
//!
//! ```
//! use rrssh::Router;
//! use tower_http::trace::TraceLayer;
//!
//! let app: Router = Router::new().layer(
//!     TraceLayer::new_for_http()
//!         .make_span_with(rrssh::trace::call_span)
//!         .on_response(rrssh::trace::record_response),
//! );
//! ```

use std::time::Duration;

use tracing::Span;

use crate::Peer;
use crate::client::REQUEST_ID_HEADER;

/// The span of a served call: `rrssh.call` at INFO with `method`, `path`, `user`,
/// `fingerprint`, `request_id`, and empty `status` and `latency_ms` that
/// [`record_response`] fills.
pub fn call_span<B>(req: &http::Request<B>) -> Span {
    let peer = req.extensions().get::<Peer>();
    let request_id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "rrssh.call",
        method = %req.method(),
        path = %req.uri().path(),
        user = peer.map_or("", Peer::user),
        fingerprint = peer.map_or("", Peer::fingerprint),
        request_id,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    )
}

/// Records the status and latency of a call on its span (made by [`call_span`]), and logs
/// the end of the call at INFO.
pub fn record_response<B>(res: &http::Response<B>, latency: Duration, span: &Span) {
    let ms = latency.as_secs_f64() * 1000.0;
    span.record("status", res.status().as_u16());
    span.record("latency_ms", ms);
    tracing::info!(parent: span, status = res.status().as_u16(), latency_ms = ms, "call finished");
}
