//! `GET /peers/NAME/openapi.json`: the peer's OpenAPI document as seen through the gateway,
//! its paths under `/peers/NAME` and bearer tokens as its security scheme, so an HTTP client
//! generated from it calls the peer through the gateway unchanged.

use http::{Method, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Map, Value, json};

use crate::hub::Registry;
use crate::hub::relay::relay_call;
use crate::openapi::OPENAPI_PATH;
use crate::{ApiError, Body, IntoResponse, Json, Peer, Request, Response};

/// The largest document read from a peer.
const MAX_DOCUMENT: usize = 16 << 20;

/// The peer's document, rewritten for the gateway.
pub(super) async fn peer_document(registry: &Registry, caller: &Peer, name: &str) -> Response {
    let mut req = Request::new(Body::empty());
    *req.method_mut() = Method::GET;
    let res = relay_call(
        registry,
        caller,
        name,
        OPENAPI_PATH.trim_start_matches('/'),
        req,
    )
    .await;
    if !res.status().is_success() {
        return res;
    }
    let body = match http_body_util::Limited::new(res.into_body(), MAX_DOCUMENT)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!("reading the document: {e}"),
            )
            .into_response();
        }
    };
    let Ok(mut doc) = serde_json::from_slice::<Value>(&body) else {
        return ApiError::new(StatusCode::BAD_GATEWAY, "the peer's document is not JSON")
            .into_response();
    };
    rewrite(&mut doc, name);
    Json(doc).into_response()
}

/// Moves every path under `/peers/NAME` and names the gateway's bearer tokens as the way in.
fn rewrite(doc: &mut Value, name: &str) {
    let prefix = format!(
        "{}/{}",
        super::PEERS_PREFIX,
        percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
    );
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        let moved: Map<String, Value> = std::mem::take(paths)
            .into_iter()
            .map(|(p, v)| (format!("{prefix}{p}"), v))
            .collect();
        *paths = moved;
    }
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("security".into(), json!([{"bearer": []}]));
        let components = obj
            .entry("components")
            .or_insert_with(|| json!({}))
            .as_object_mut();
        if let Some(c) = components {
            c.insert(
                "securitySchemes".into(),
                json!({"bearer": {"type": "http", "scheme": "bearer"}}),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_move_under_the_peer_and_tokens_are_named() {
        let mut doc = json!({"openapi": "3.1.0", "paths": {"/items/{id}": {"get": {}}}});
        rewrite(&mut doc, "inv");
        assert!(doc["paths"]["/peers/inv/items/{id}"]["get"].is_object());
        assert_eq!(doc["security"][0]["bearer"], json!([]));
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
    }
}
