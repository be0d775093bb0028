//! [`Json<T>`]: a JSON request body extractor and a JSON response.

use std::ops::{Deref, DerefMut};

use bytes::BytesMut;
use http::{HeaderMap, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::extract::FromRequest;
use crate::extract::rejection::JsonRejection;
use crate::response::{APPLICATION_JSON, IntoResponse, Response};
use crate::{ApiError, Body, Request};

/// A JSON body: as an extractor it parses the request body (which must have
/// `content-type: application/json`); as a response it serializes `T`.
///
/// Rejections: 415 when the content type is not JSON, 400 when the body is not valid JSON,
/// 422 when it is valid JSON of the wrong shape, 413 when it is over the body limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

/// Whether a content type names JSON: `application/json` or `application/*+json`.
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = ct.split(';').next().unwrap_or("").trim();
    let Some((ty, sub)) = mime.split_once('/') else {
        return false;
    };
    ty.eq_ignore_ascii_case("application")
        && (sub.eq_ignore_ascii_case("json")
            || sub.len() > 5 && sub[sub.len() - 5..].eq_ignore_ascii_case("+json"))
}

impl<T> Json<T>
where
    T: DeserializeOwned,
{
    /// Parses JSON bytes, with the rejection an extractor would answer.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, JsonRejection> {
        serde_json::from_slice(bytes).map(Json).map_err(|e| {
            let status = match e.classify() {
                serde_json::error::Category::Data => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::BAD_REQUEST,
            };
            let msg = match e.classify() {
                serde_json::error::Category::Data => {
                    format!("JSON does not fit the expected type: {e}")
                }
                _ => format!("invalid JSON: {e}"),
            };
            JsonRejection(ApiError::new(status, msg).with_detail(serde_json::json!({
                "line": e.line(), "column": e.column()
            })))
        })
    }
}

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = JsonRejection;

    async fn from_request(req: Request, _: &S) -> Result<Self, JsonRejection> {
        if !is_json(req.headers()) {
            return Err(JsonRejection::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected a request with `content-type: application/json`",
            ));
        }
        let bytes = crate::extract::read_body(req)
            .await
            .map_err(|(s, m)| JsonRejection::new(s, m))?;
        Self::from_bytes(&bytes)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut buf = BytesMut::with_capacity(128);
        match crate::response::encode_json(&mut buf, &self.0) {
            Ok(()) => {
                let mut res = Response::new(Body::from(buf.freeze()));
                res.headers_mut()
                    .insert(header::CONTENT_TYPE, APPLICATION_JSON);
                res
            }
            Err(e) => ApiError::internal(format!("response did not serialize to JSON: {e}"))
                .into_response(),
        }
    }
}

impl<T> Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> From<T> for Json<T> {
    fn from(v: T) -> Self {
        Json(v)
    }
}
