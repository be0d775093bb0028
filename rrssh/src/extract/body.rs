use bytes::Bytes;
use http::StatusCode;

use super::FromRequest;
use super::rejection::BodyRejection;
use crate::body::LengthLimitError;
use crate::{BoxError, Request};

/// The default limit on a request body read by `Json`, `Bytes` or `String`: 16 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// The body limit for the requests of a router, set with
/// [`Router::body_limit`](crate::Router::body_limit) (kept in the request extensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

pub(crate) fn limit_of(req: &Request) -> usize {
    req.extensions()
        .get::<BodyLimit>()
        .map_or(DEFAULT_BODY_LIMIT, |l| l.0)
}

/// Reads the whole body within the router's limit; the error says which status to answer.
pub(crate) async fn read_body(req: Request) -> Result<Bytes, (StatusCode, String)> {
    let limit = limit_of(&req);
    let hold = req
        .extensions()
        .get::<std::sync::Arc<crate::budget::CallHold>>()
        .cloned();
    req.into_body()
        .collect_within(limit, hold.as_deref())
        .await
        .map_err(|e: BoxError| {
            if let Some(over) = e.downcast_ref::<crate::budget::OverBudget>() {
                (over.status(), over.to_string())
            } else if let Some(idle) = e.downcast_ref::<crate::body::BodyIdle>() {
                (StatusCode::REQUEST_TIMEOUT, idle.to_string())
            } else if e.is::<LengthLimitError>() {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body is larger than the limit of {limit} bytes"),
                )
            } else if e.is::<http_body_util::LengthLimitError>() {
                // A body limit layer (such as tower-http's `RequestBodyLimitLayer`) cut it.
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body is too large: {e}"),
                )
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    format!("failed to read the request body: {e}"),
                )
            }
        })
}

impl<S: Send + Sync> FromRequest<S> for Bytes {
    type Rejection = BodyRejection;

    async fn from_request(req: Request, _: &S) -> Result<Self, BodyRejection> {
        read_body(req)
            .await
            .map_err(|(s, m)| BodyRejection::new(s, m))
    }
}

impl<S: Send + Sync> FromRequest<S> for String {
    type Rejection = BodyRejection;

    async fn from_request(req: Request, _: &S) -> Result<Self, BodyRejection> {
        let bytes = read_body(req)
            .await
            .map_err(|(s, m)| BodyRejection::new(s, m))?;
        String::from_utf8(bytes.into()).map_err(|e| {
            BodyRejection::new(
                StatusCode::BAD_REQUEST,
                format!("request body is not valid UTF-8: {e}"),
            )
        })
    }
}
