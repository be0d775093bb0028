//! Where a gateway sends calls: the peers of a hub, by name, or the peer of one connection.

use std::fmt;
use std::sync::Arc;

use axum::extract::State;
use tower::ServiceExt as _;
use tower::util::BoxCloneSyncService;

use super::{Gateway, to_http};
use crate::client::Error;
use crate::hub::Registry;
use crate::hub::relay::{answer, drop_caller_headers};
use crate::{ApiError, Body, IntoResponse, Request, Response};

/// A gateway's upstream.
#[derive(Clone)]
pub(super) enum Upstream {
    /// The peers connected to a hub.
    Hub(Registry),
    /// The peer of one connection: every path goes to it.
    One(BoxCloneSyncService<Request, Response, Error>),
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Upstream::Hub(_) => f.write_str("Hub"),
            Upstream::One(_) => f.write_str("One"),
        }
    }
}

/// `METHOD /PATH` to the one upstream, as `METHOD /PATH` there.
pub(super) async fn forward(
    State(gw): State<Arc<Gateway>>,
    req: axum::extract::Request,
) -> axum::response::Response {
    if let Err(why) = gw.caller(&req) {
        return to_http(why.response(), false);
    }
    let Upstream::One(service) = &gw.upstream else {
        return to_http(ApiError::not_found("no such route").into_response(), false);
    };
    let ((mut parts, body), stream) = gw.prepare(req);
    // The peer knows this node by its key; what an HTTP caller says of itself is not passed on.
    drop_caller_headers(&mut parts.headers);
    let mut out = Request::new(Body::new(body));
    *out.method_mut() = parts.method;
    *out.uri_mut() = parts.uri;
    *out.headers_mut() = parts.headers;
    tracing::debug!(method = %out.method(), path = %out.uri().path(), "gateway call");
    to_http(answer(service.clone().oneshot(out).await), stream)
}
