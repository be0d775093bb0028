mod de;

use std::ops::Deref;
use std::sync::Arc;

use http::StatusCode;
use http::request::Parts;
use serde::de::DeserializeOwned;

use super::FromRequestParts;
use super::rejection::PathRejection;

/// The named captures of the matched route (`/users/{id}`), parsed into `T`.
///
/// `T` is a single value when the route has one capture, a tuple in capture order, or a
/// struct (or map) by capture name. Values are percent-decoded. A capture that does not parse
/// answers 400.
///
/// ```
/// use rrssh::Path;
///
/// async fn one(Path(id): Path<u64>) {}
/// async fn two(Path((org, repo)): Path<(String, String)>) {}
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Path<T>(pub T);

/// The captures of the matched route, in order, percent-decoded; put into the request
/// extensions by the router.
#[derive(Debug, Clone, Default)]
pub(crate) struct PathParams(pub(crate) Arc<Vec<(Arc<str>, String)>>);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = PathRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, PathRejection> {
        let Some(params) = parts.extensions.get::<PathParams>() else {
            return Err(PathRejection::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "`Path` used outside a router: no route captures in this request",
            ));
        };
        T::deserialize(de::PathDeserializer::new(&params.0))
            .map(Path)
            .map_err(|e| PathRejection::new(StatusCode::BAD_REQUEST, format!("invalid path: {e}")))
    }
}

impl<T> Deref for Path<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
