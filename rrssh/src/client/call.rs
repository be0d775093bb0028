use std::future::Future;

use tower::ServiceExt;
use tower_service::Service;

use super::Error;
use crate::{BoxError, Request, Response};

/// Anything that takes a [`Request`] and gives back a [`Response`]: the in-process
/// [`TestClient`](crate::test::TestClient), a [`Router`](crate::Router) itself, a network client,
/// or any of those wrapped in tower layers.
///
/// Implemented for every cloneable [`tower::Service`](Service) over rrssh's request and response
/// types, so client-side layers (timeouts, retries, concurrency limits) compose.
pub trait Call: Send + Sync {
    /// Sends the request and waits for the response head (the body may still be streaming).
    fn call(&self, req: Request) -> impl Future<Output = Result<Response, Error>> + Send;
}

impl<T> Call for T
where
    T: Service<Request, Response = Response> + Clone + Send + Sync,
    T::Error: Into<BoxError>,
    T::Future: Send,
{
    fn call(&self, req: Request) -> impl Future<Output = Result<Response, Error>> + Send {
        self.clone().oneshot(req).map_err_into_client()
    }
}

trait MapErrIntoClient: Sized {
    type Out;
    fn map_err_into_client(self) -> Self::Out;
}

impl<F, E> MapErrIntoClient for F
where
    F: Future<Output = Result<Response, E>>,
    E: Into<BoxError>,
{
    type Out = futures_util::future::MapErr<F, fn(E) -> Error>;
    fn map_err_into_client(self) -> Self::Out {
        futures_util::TryFutureExt::map_err(self, |e| Error::from_boxed(e.into()))
    }
}
