use tower_layer::Layer;

use super::HandleError;
use crate::{BoxError, Response};

/// Wraps a fallible service so that its errors become responses (see [`HandleError`]).
#[derive(Clone)]
pub struct HandleErrorLayer<F> {
    f: F,
}

impl<F> std::fmt::Debug for HandleErrorLayer<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HandleErrorLayer")
    }
}

impl<F> HandleErrorLayer<F>
where
    F: Fn(BoxError) -> Response + Clone,
{
    /// Errors become `f(error)`.
    pub fn new(f: F) -> Self {
        Self { f }
    }
}

impl HandleErrorLayer<fn(BoxError) -> Response> {
    /// Errors become [`standard_response`](super::standard_response)s.
    pub fn standard() -> Self {
        Self {
            f: super::standard_response,
        }
    }
}

impl<S, F: Clone> Layer<S> for HandleErrorLayer<F> {
    type Service = HandleError<S, F>;

    fn layer(&self, inner: S) -> HandleError<S, F> {
        HandleError::new(inner, self.f.clone())
    }
}
