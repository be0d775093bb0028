use std::convert::Infallible;
use std::fmt;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tower::util::BoxCloneSyncService;
use tower_layer::Layer;
use tower_service::Service;

use crate::response::{IntoResponse, Response};
use crate::{Body, BoxError, Request};

/// A type-erased, cloneable service answering requests: what the router stores per method.
///
/// It accepts requests with any body type, so layers that change the request body (such as
/// tower-http's `RequestBodyLimitLayer`) work in front of it.
pub struct Route(BoxCloneSyncService<Request, Response, Infallible>);

impl Route {
    /// Erases a service.
    pub fn new<T>(svc: T) -> Self
    where
        T: Service<Request, Error = Infallible> + Clone + Send + Sync + 'static,
        T::Response: IntoResponse + 'static,
        T::Future: Send + 'static,
    {
        Self(BoxCloneSyncService::new(tower::ServiceExt::map_response(
            svc,
            IntoResponse::into_response,
        )))
    }

    /// Wraps the route in a layer.
    pub fn layer<L>(self, layer: L) -> Route
    where
        L: Layer<Route>,
        L::Service: Service<Request> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request>>::Error: Into<Infallible> + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        let svc = tower::ServiceExt::map_err(layer.layer(self), Into::into);
        Route::new(svc)
    }

    pub(crate) fn oneshot(
        &self,
        req: Request,
    ) -> tower::util::Oneshot<BoxCloneSyncService<Request, Response, Infallible>, Request> {
        tower::util::Oneshot::new(self.0.clone(), req)
    }
}

impl Clone for Route {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Route")
    }
}

impl<B> Service<http::Request<B>> for Route
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        self.0.call(req.map(Body::new))
    }
}
