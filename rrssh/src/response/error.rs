//! The standard error JSON as a response, and error answers of other layers turned into it.

use super::{IntoResponse, Response};
use crate::ApiError;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = Response::new(crate::Body::from(self.to_json()));
        *res.status_mut() = self.status_code();
        res.headers_mut()
            .insert(http::header::CONTENT_TYPE, super::APPLICATION_JSON);
        res
    }
}

/// Gives an error response in plain text or with an empty untyped body (from a tower-http
/// layer, or a handler that answered an error status with text) the standard error JSON body,
/// keeping its status and other headers; the text becomes the message when it is short, else
/// the status's reason.
pub(crate) fn standardize(res: Response) -> Response {
    if res.status().as_u16() < 400 {
        return res;
    }
    let content_type = res.headers().get(http::header::CONTENT_TYPE);
    let plain = match content_type {
        Some(v) => v.as_bytes().starts_with(b"text/plain"),
        // An empty body with no type (tower-http's timeout); other untyped bodies are the
        // handler's own raw responses and pass through.
        None => http_body::Body::size_hint(res.body()).exact() == Some(0),
    };
    if !plain {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let text = body
        .as_full()
        .and_then(|b| std::str::from_utf8(b).ok())
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 1024)
        .map(str::to_owned);
    let message = text.unwrap_or_else(|| {
        parts
            .status
            .canonical_reason()
            .unwrap_or("error")
            .to_lowercase()
    });
    parts.headers.remove(http::header::CONTENT_LENGTH);
    let mut out = ApiError::new(parts.status, message).into_response();
    parts
        .headers
        .insert(http::header::CONTENT_TYPE, super::APPLICATION_JSON);
    *out.headers_mut() = parts.headers;
    out
}
