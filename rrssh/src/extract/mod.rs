//! Extractors: typed pieces of a request, taken as handler arguments.
//!
//! An extractor that reads only the request head implements [`FromRequestParts`] and may
//! appear in any position; one that consumes the body ([`Json`](crate::Json), [`Bytes`](bytes::Bytes),
//! `String`) implements [`FromRequest`] and must be the last argument.

mod body;
mod deadline;
mod extension;
mod from_ref;
pub(crate) mod grants;
mod params;
mod path;
mod peer;
pub mod rejection;
mod state;

use std::convert::Infallible;
use std::future::Future;

use http::HeaderMap;
use http::request::Parts;

pub(crate) use self::body::read_body;
pub use self::body::{BodyLimit, DEFAULT_BODY_LIMIT};
pub(crate) use self::deadline::TimedByCarrier;
pub use self::deadline::{Deadline, TIMEOUT_HEADER};
pub use self::extension::Extension;
pub use self::from_ref::FromRef;
pub use self::params::Params;
pub use self::path::Path;
pub(crate) use self::path::PathParams;
pub use self::peer::{CertificateInfo, Peer, PeerInfo};
pub use self::state::State;
use crate::response::IntoResponse;
use crate::{Body, Request};

pub(crate) mod private {
    /// Marker: the extractor consumes the request body.
    #[derive(Debug, Clone, Copy)]
    pub enum ViaRequest {}
    /// Marker: the extractor reads only the request head.
    #[derive(Debug, Clone, Copy)]
    pub enum ViaParts {}
}

/// An extractor that reads only the request head (method, URI, headers, extensions).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an extractor that can come before the last argument",
    note = "extractors that read the body (`Json`, `Bytes`, `String`) must be the last argument; \
            other arguments must implement `FromRequestParts`"
)]
pub trait FromRequestParts<S>: Sized {
    /// The response sent when extraction fails.
    type Rejection: IntoResponse;

    /// Extracts `Self` from the request head.
    fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> impl Future<Output = Result<Self, Self::Rejection>> + Send;
}

/// An extractor that may consume the request body; it must be a handler's last argument.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an extractor",
    note = "handler arguments must implement `FromRequestParts` (any position) or `FromRequest` (last position)"
)]
pub trait FromRequest<S, M = private::ViaRequest>: Sized {
    /// The response sent when extraction fails.
    type Rejection: IntoResponse;

    /// Extracts `Self` from the whole request.
    fn from_request(
        req: Request,
        state: &S,
    ) -> impl Future<Output = Result<Self, Self::Rejection>> + Send;
}

impl<S, T> FromRequest<S, private::ViaParts> for T
where
    S: Send + Sync,
    T: FromRequestParts<S>,
{
    type Rejection = T::Rejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, _) = req.into_parts();
        T::from_request_parts(&mut parts, state).await
    }
}

impl<S, T> FromRequestParts<S> for Option<T>
where
    S: Send + Sync,
    T: FromRequestParts<S>,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Infallible> {
        Ok(T::from_request_parts(parts, state).await.ok())
    }
}

impl<S, T> FromRequest<S> for Option<T>
where
    S: Send + Sync,
    T: FromRequest<S>,
{
    type Rejection = Infallible;

    async fn from_request(req: Request, state: &S) -> Result<Self, Infallible> {
        Ok(T::from_request(req, state).await.ok())
    }
}

impl<S, T> FromRequestParts<S> for Result<T, T::Rejection>
where
    S: Send + Sync,
    T: FromRequestParts<S>,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Infallible> {
        Ok(T::from_request_parts(parts, state).await)
    }
}

impl<S, T> FromRequest<S> for Result<T, T::Rejection>
where
    S: Send + Sync,
    T: FromRequest<S>,
{
    type Rejection = Infallible;

    async fn from_request(req: Request, state: &S) -> Result<Self, Infallible> {
        Ok(T::from_request(req, state).await)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for HeaderMap {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(parts.headers.clone())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for http::Method {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(parts.method.clone())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for http::Uri {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(parts.uri.clone())
    }
}

impl<S: Send + Sync> FromRequest<S> for Request {
    type Rejection = Infallible;

    async fn from_request(req: Request, _: &S) -> Result<Self, Infallible> {
        Ok(req)
    }
}

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = Infallible;

    async fn from_request(req: Request, _: &S) -> Result<Self, Infallible> {
        Ok(req.into_body())
    }
}
