//! In-process tests of the core: router, extractors, responses, typed calls, tower layers.

mod extractors;
mod layers;
mod openapi;
mod responses;
mod router;
pub(crate) mod typed;

use http_body_util::BodyExt;
use rrssh::{Body, Response};

/// Reads a response's status and body as JSON (or `null` for an empty body).
pub(crate) async fn json_of(res: Response) -> (u16, serde_json::Value) {
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let value = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
        })
    };
    (status, value)
}

/// A request with a JSON body.
pub(crate) fn json_req(method: &str, uri: &str, body: &str) -> rrssh::Request {
    http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// A request without a body.
pub(crate) fn req(method: &str, uri: &str) -> rrssh::Request {
    http::Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap()
}
