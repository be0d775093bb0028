use std::ops::Deref;

use http::StatusCode;
use http::request::Parts;
use serde::de::DeserializeOwned;

use super::FromRequestParts;
use super::rejection::ParamsRejection;

/// The query string, parsed into `T`.
///
/// Nested structs and sequences use the bracket syntax (`filter[tag][0]=a&page=2`), which is
/// what typed clients send, so anything a client serializes parses back the same.
/// A query that does not fit `T` answers 400.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Params<T>(pub T);

/// Nesting depth accepted in query strings.
pub(crate) const MAX_DEPTH: usize = 16;

pub(crate) fn qs_config() -> serde_qs::Config {
    serde_qs::Config::new(MAX_DEPTH, false)
}

impl<T, S> FromRequestParts<S> for Params<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ParamsRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ParamsRejection> {
        let query = parts.uri.query().unwrap_or_default();
        qs_config().deserialize_str(query).map(Params).map_err(|e| {
            ParamsRejection::new(
                StatusCode::BAD_REQUEST,
                format!("invalid query string: {e}"),
            )
        })
    }
}

impl<T> Deref for Params<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
