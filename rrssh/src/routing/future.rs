use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tower::util::{BoxCloneSyncService, Oneshot};

use crate::extract::Deadline;
use crate::{Request, Response};

type RouteCall = Oneshot<BoxCloneSyncService<Request, Response, Infallible>, Request>;

/// The future of a [`Router`](super::Router) call.
pub struct RouterFuture(Kind);

enum Kind {
    Ready(Option<Response>),
    Call(
        Pin<Box<RouteCall>>,
        Option<Pin<Box<tokio::time::Sleep>>>,
        Option<crate::observe::MatchedRoute>,
    ),
}

impl RouterFuture {
    pub(super) fn ready(res: Response) -> Self {
        Self(Kind::Ready(Some(res)))
    }

    pub(super) fn call(
        call: RouteCall,
        deadline: Deadline,
        route: Option<crate::observe::MatchedRoute>,
    ) -> Self {
        Self(Kind::Call(
            Box::pin(call),
            deadline.0.map(|at| Box::pin(tokio::time::sleep_until(at))),
            route,
        ))
    }
}

impl fmt::Debug for RouterFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RouterFuture")
    }
}

impl Future for RouterFuture {
    type Output = Result<Response, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            Kind::Ready(res) => {
                Poll::Ready(Ok(res.take().unwrap_or_else(super::deadline_exceeded)))
            }
            Kind::Call(call, deadline, route) => {
                if let Poll::Ready(res) = call.as_mut().poll(cx) {
                    return Poll::Ready(res.map(|r| {
                        let mut r = crate::response::standardize(r);
                        if let Some(route) = route.take() {
                            r.extensions_mut().insert(route);
                        }
                        r
                    }));
                }
                if let Some(sleep) = deadline {
                    ready!(sleep.as_mut().poll(cx));
                    // The handler future is dropped with `self`, which cancels it.
                    return Poll::Ready(Ok(super::deadline_exceeded()));
                }
                Poll::Pending
            }
        }
    }
}
