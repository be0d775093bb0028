//! Handlers: async functions whose arguments are extractors and whose result is a response.

mod service;

use std::future::Future;
use std::pin::Pin;

pub use self::service::HandlerService;
use crate::Request;
use crate::extract::{FromRequest, FromRequestParts};
use crate::response::{IntoResponse, Response};

/// A boxed future answering one request.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Response> + Send + 'static>>;

/// An async function that can answer requests.
///
/// Implemented for async functions (and closures) of 0 to 16 arguments where every argument
/// but the last implements [`FromRequestParts`], the last implements [`FromRequest`], and the
/// result implements [`IntoResponse`]. `T` names the argument types; `S` is the router state.
#[diagnostic::on_unimplemented(
    note = "handlers are `async fn`s whose arguments are extractors (body extractor last, at most 16) \
            and whose return type implements `IntoResponse`; add `#[rrssh::debug_handler]` or use a route \
            attribute to see which part is wrong"
)]
pub trait Handler<T, S>: Clone + Send + Sync + Sized + 'static {
    /// Runs the handler on a request.
    fn call(self, req: Request, state: S) -> HandlerFuture;

    /// Binds the state, giving a [`tower::Service`](tower_service::Service).
    fn with_state(self, state: S) -> HandlerService<Self, T, S> {
        HandlerService::new(self, state)
    }
}

impl<F, Fut, Res, S> Handler<((),), S> for F
where
    F: FnOnce() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Res> + Send,
    Res: IntoResponse,
{
    fn call(self, _req: Request, _state: S) -> HandlerFuture {
        Box::pin(async move { self().await.into_response() })
    }
}

macro_rules! impl_handler {
    ([$($ty:ident),*], $last:ident) => {
        #[allow(non_snake_case, unused_mut)]
        impl<F, Fut, S, Res, M, $($ty,)* $last> Handler<(M, $($ty,)* $last,), S> for F
        where
            F: FnOnce($($ty,)* $last,) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = Res> + Send,
            S: Send + Sync + 'static,
            Res: IntoResponse,
            $( $ty: FromRequestParts<S> + Send, )*
            $last: FromRequest<S, M> + Send,
        {
            fn call(self, req: Request, state: S) -> HandlerFuture {
                Box::pin(async move {
                    let (mut parts, body) = req.into_parts();
                    $(
                        let $ty = match $ty::from_request_parts(&mut parts, &state).await {
                            Ok(value) => value,
                            Err(rejection) => return rejection.into_response(),
                        };
                    )*
                    let req = Request::from_parts(parts, body);
                    let $last = match $last::from_request(req, &state).await {
                        Ok(value) => value,
                        Err(rejection) => return rejection.into_response(),
                    };
                    self($($ty,)* $last,).await.into_response()
                })
            }
        }
    };
}

all_the_tuples!(impl_handler);
