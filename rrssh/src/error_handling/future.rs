use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use crate::{BoxError, IntoResponse, Response};

pin_project! {
    /// The future of a [`HandleError`](super::HandleError) call.
    pub struct HandleErrorFuture<Fut, F> {
        #[pin]
        kind: Kind<Fut, F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<Fut, F> {
        Inner { #[pin] fut: Fut, f: F },
        Ready { res: Option<Response> },
    }
}

impl<Fut, F> HandleErrorFuture<Fut, F> {
    pub(super) fn inner(fut: Fut, f: F) -> Self {
        Self {
            kind: Kind::Inner { fut, f },
        }
    }

    pub(super) fn ready(res: Response) -> Self {
        Self {
            kind: Kind::Ready { res: Some(res) },
        }
    }
}

impl<Fut, F, R, E> Future for HandleErrorFuture<Fut, F>
where
    Fut: Future<Output = Result<R, E>>,
    R: IntoResponse,
    E: Into<BoxError>,
    F: Fn(BoxError) -> Response,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { fut, f } => Poll::Ready(Ok(match ready!(fut.poll(cx)) {
                Ok(r) => r.into_response(),
                Err(e) => f(e.into()),
            })),
            KindProj::Ready { res } => {
                Poll::Ready(Ok(res.take().expect("polled after completion")))
            }
        }
    }
}

impl<Fut, F> std::fmt::Debug for HandleErrorFuture<Fut, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HandleErrorFuture")
    }
}
