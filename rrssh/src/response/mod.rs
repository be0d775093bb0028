//! Turning handler results into responses: [`IntoResponse`], JSON, and JSON streams.

mod encode;
mod error;
mod into_response;
mod stream;

pub(crate) use self::encode::encode_json;
pub use self::into_response::IntoResponse;
pub(crate) use self::stream::{END_ERROR, END_OK, TRAILER_END, TRAILER_ERROR};
pub use self::stream::{JsonStream, StreamResponse};

/// A response with rrssh's [`Body`](crate::Body).
pub type Response<B = crate::Body> = http::Response<B>;

pub(crate) const APPLICATION_JSON: http::HeaderValue =
    http::HeaderValue::from_static("application/json");
pub(crate) const APPLICATION_NDJSON: http::HeaderValue =
    http::HeaderValue::from_static("application/x-ndjson");
pub(crate) use self::error::standardize;
