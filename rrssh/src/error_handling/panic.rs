//! Panic details in 500 answers, for development ([`Router::expose_errors`](crate::Router::expose_errors)).
//!
//! A process-wide panic hook (installed once, on top of the hook already there, which still
//! runs) keeps the message, location and backtrace of the last panic on each thread; the
//! answer to a call whose handler panicked carries them in its `detail`.

use std::any::Any;
use std::backtrace::Backtrace;
use std::cell::RefCell;
use std::sync::Once;

use std::convert::Infallible;

use serde_json::json;
use tower_service::Service;

use crate::{ApiError, IntoResponse, Request, Response};

thread_local! {
    static LAST: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

/// Installs the hook (once per process).
pub(crate) fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_default();
            let backtrace = Backtrace::force_capture().to_string();
            LAST.with(|l| *l.borrow_mut() = Some((location, backtrace)));
            previous(info);
        }));
    });
}

/// The 500 answer to a panic, with its message, location and backtrace in `detail`.
pub(crate) fn answer(payload: &(dyn Any + Send)) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    let (location, backtrace) = LAST.with(|l| l.borrow_mut().take()).unwrap_or_default();
    let backtrace: Vec<&str> = backtrace.lines().map(str::trim_end).collect();
    ApiError::internal("the handler panicked")
        .with_detail(json!({
            "panic": message,
            "location": location,
            "backtrace": backtrace,
        }))
        .into_response()
}

/// `inner`, with a panic while it answers turned into [`answer`].
pub(crate) fn catch<S>(
    inner: S,
) -> impl Service<
    Request,
    Response = Response,
    Error = Infallible,
    Future = impl Future<Output = Result<Response, Infallible>> + Send,
> + Clone
+ Send
+ Sync
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send,
{
    tower::service_fn(move |req: Request| {
        let mut inner = inner.clone();
        async move {
            let run = std::panic::AssertUnwindSafe(inner.call(req));
            match futures_util::FutureExt::catch_unwind(run).await {
                Ok(res) => res,
                Err(payload) => Ok(answer(&*payload)),
            }
        }
    })
}
