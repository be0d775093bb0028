use std::convert::Infallible;
use std::task::{Context, Poll};

use tower_service::Service;

use super::HandleErrorFuture;
use crate::{BoxError, IntoResponse, Request, Response};

/// A service whose errors (from `poll_ready` or from the call) are answered with `f(error)`;
/// its own error type is [`Infallible`].
pub struct HandleError<S, F> {
    inner: S,
    f: F,
    not_ready: Option<BoxError>,
}

impl<S: Clone, F: Clone> Clone for HandleError<S, F> {
    fn clone(&self) -> Self {
        Self::new(self.inner.clone(), self.f.clone())
    }
}

impl<S, F> std::fmt::Debug for HandleError<S, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HandleError")
    }
}

impl<S, F> HandleError<S, F> {
    /// Wraps `inner`.
    pub fn new(inner: S, f: F) -> Self {
        Self {
            inner,
            f,
            not_ready: None,
        }
    }
}

impl<S, F> Service<Request> for HandleError<S, F>
where
    S: Service<Request>,
    S::Response: IntoResponse,
    S::Error: Into<BoxError>,
    F: Fn(BoxError) -> Response + Clone,
{
    type Response = Response;
    type Error = Infallible;
    type Future = HandleErrorFuture<S::Future, F>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        if self.not_ready.is_none() {
            match self.inner.poll_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => {}
                // Answered by the next call.
                Poll::Ready(Err(e)) => self.not_ready = Some(e.into()),
            }
        }
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        match self.not_ready.take() {
            Some(e) => HandleErrorFuture::ready((self.f)(e)),
            None => HandleErrorFuture::inner(self.inner.call(req), self.f.clone()),
        }
    }
}
