//! The error JSON every part of rrssh answers with.

use std::fmt;

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
