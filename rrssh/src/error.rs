//! The error JSON every part of rrssh answers with.

use std::fmt;

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::response::{IntoResponse, Response};

/// An error answer: a status and the standard error JSON,
/// `{"error": {"status": 422, "message": "...", "detail": ...}}`.
///
/// Every rejection, router error and stream error in rrssh is one of these, and typed
/// clients decode it back (see [`client::Error::Status`](crate::client::Error::Status)).
/// Handlers can return it too:
///
/// ```
/// use rrssh::{ApiError, Json, Path, StatusCode};
///
/// async fn find(Path(id): Path<u64>) -> Result<Json<u64>, ApiError> {
///     if id == 0 {
///         return Err(ApiError::new(StatusCode::NOT_FOUND, "no user 0"));
///     }
///     Ok(Json(id))
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    /// The HTTP-style status code (400–599).
    pub status: u16,
    /// What went wrong, in plain words.
    pub message: String,
    /// Machine-readable detail (for example the JSON path that failed to parse), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}

#[derive(Serialize, Deserialize)]
struct Envelope<E> {
    error: E,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status: status.as_u16(),
            message: message.into(),
            detail: None,
        }
    }

    /// Adds machine-readable detail.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<Value>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 500 Internal Server Error.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The status as a [`StatusCode`] (500 if the number is not a valid status).
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The standard error JSON for this error.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&Envelope { error: self }).unwrap_or_else(|_| b"{}".to_vec())
    }

    /// Decodes the standard error JSON. A body in another shape (or none) gives an error with
    /// the status's canonical reason as message and the raw body, if any, as detail.
    pub fn from_body(status: StatusCode, body: &[u8]) -> Self {
        if let Ok(env) = serde_json::from_slice::<Envelope<ApiError>>(body) {
            return env.error;
        }
        let mut err = Self::new(status, status.canonical_reason().unwrap_or("error"));
        if !body.is_empty() {
            let detail = serde_json::from_slice::<Value>(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
            err.detail = Some(detail);
        }
        err
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = Response::new(crate::Body::from(self.to_json()));
        *res.status_mut() = self.status_code();
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            crate::response::APPLICATION_JSON,
        );
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
    parts.headers.insert(
        http::header::CONTENT_TYPE,
        crate::response::APPLICATION_JSON,
    );
    *out.headers_mut() = parts.headers;
    out
}

impl From<String> for ApiError {
    fn from(message: String) -> Self {
        Self::internal(message)
    }
}

impl From<&str> for ApiError {
    fn from(message: &str) -> Self {
        Self::internal(message)
    }
}

impl From<StatusCode> for ApiError {
    fn from(status: StatusCode) -> Self {
        Self::new(status, status.canonical_reason().unwrap_or("error"))
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> Self {
        Self::internal(e.to_string())
    }
}
