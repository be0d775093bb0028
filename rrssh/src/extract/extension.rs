use std::any::type_name;
use std::ops::Deref;

use http::StatusCode;
use http::request::Parts;

use super::FromRequestParts;
use super::rejection::ExtensionRejection;

/// A value from the request's extensions, put there by a layer (for example
/// `tower_http::add_extension::AddExtensionLayer`) or by the transport.
#[derive(Debug, Default, Clone, Copy)]
pub struct Extension<T>(pub T);

impl<S, T> FromRequestParts<S> for Extension<T>
where
    T: Clone + Send + Sync + 'static,
    S: Send + Sync,
{
    type Rejection = ExtensionRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ExtensionRejection> {
        parts
            .extensions
            .get::<T>()
            .cloned()
            .map(Extension)
            .ok_or_else(|| {
                ExtensionRejection::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!(
                        "missing request extension `{}`: is the layer that adds it installed?",
                        type_name::<T>()
                    ),
                )
            })
    }
}

impl<T> Deref for Extension<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T, S> tower_layer::Layer<S> for Extension<T>
where
    T: Clone + Send + Sync + 'static,
{
    type Service = AddExtension<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        AddExtension {
            inner,
            value: self.0.clone(),
        }
    }
}

/// The service made by using an [`Extension`] as a layer: inserts the value into every request.
#[derive(Debug, Clone)]
pub struct AddExtension<S, T> {
    inner: S,
    value: T,
}

impl<S, T, B> tower_service::Service<http::Request<B>> for AddExtension<S, T>
where
    S: tower_service::Service<http::Request<B>>,
    T: Clone + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> S::Future {
        req.extensions_mut().insert(self.value.clone());
        self.inner.call(req)
    }
}
