//! Serving the peer's calls: each runs the service and sends its answer within the call's
//! deadline, which covers a stream's body too; first on the reader's task until it waits, then
//! as a task of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::{HeaderMap, HeaderValue, header};
use tower_service::Service;

use super::body::{Arrived, RecvBody, Side};
use super::{Shared, Slot, State, call};
use crate::budget::{CallHold, OverBudget};
use crate::extract::{Deadline, TimedByCarrier};
use crate::observe::{Event, MatchedRoute, Observers, UNMATCHED};
use crate::proto::Budget;
use crate::proto::CallId;
use crate::proto::SendError;
use crate::proto::headers::{END_ERROR, NDJSON, TRAILER_END, TRAILER_ERROR};
use crate::{ApiError, Body, Request, Response};

/// Why a call whose budget ran out was reset.
const DEADLINE_PASSED: &str = "the caller's deadline passed";

/// A call the peer started, as the core reported it.
pub(super) struct Incoming {
    pub(super) call: CallId,
    pub(super) method: String,
    pub(super) target: String,
    pub(super) headers: HeaderMap,
    pub(super) body: Arrived,
}

/// Builds the request and starts its handler task. Runs under the lock.
pub(super) fn start(shared: &Arc<Shared>, st: &mut State, inc: Incoming) {
    let id = inc.call;
    let reset = |st: &mut State, status: u16, msg: &str| {
        let _ = st.conn.send_reset(id, status, msg);
    };
    let Some(method) = crate::method::parse(&inc.method) else {
        return reset(st, 400, "invalid method");
    };
    let uri: http::Uri = match inc.target.parse() {
        Ok(u) => u,
        Err(e) => return reset(st, 400, &format!("invalid target: {e}")),
    };
    // The call's one timer starts now; the router and extractors read this deadline.
    let deadline = match Budget::of_headers(&inc.headers) {
        Ok(None) => None,
        Ok(Some(b)) if b.is_spent() => return reset(st, 504, DEADLINE_PASSED),
        Ok(Some(b)) => Some(tokio::time::Instant::now() + b.as_duration()),
        Err(e) => return reset(st, 400, &e.to_string()),
    };
    // Charged to the caller's key: one of its calls, and what its handler reads whole, until
    // the call is over.
    let ticket = match shared.account.take_call() {
        Ok(t) => t,
        Err(over) => return refuse(shared, st, id, &over),
    };
    // A call without a body holds nothing: no hold to allocate.
    let hold = match &inc.body {
        Arrived::Nothing => None,
        Arrived::Whole(b) => {
            let hold = Arc::new(CallHold::new(shared.account.clone()));
            if let Err(over) = hold.take(b.len()) {
                return refuse(shared, st, id, &over);
            }
            Some(hold)
        }
        Arrived::Streaming => Some(Arc::new(CallHold::new(shared.account.clone()))),
    };
    let mut slot = Slot {
        ticket,
        ..Slot::default()
    };
    let request_bytes = match &inc.body {
        Arrived::Whole(b) => b.len() as u64,
        _ => 0,
    };
    let body = RecvBody::open(shared, &mut slot, id, Side::Incoming, inc.body);
    let mut req = Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.headers_mut() = inc.headers;
    req.extensions_mut().extend(shared.extensions.clone());
    if let Some(h) = &hold {
        req.extensions_mut().insert(h.clone());
    }
    if let Some(at) = deadline {
        req.extensions_mut().insert(Deadline(Some(at)));
        req.extensions_mut().insert(TimedByCarrier);
    }
    let service = shared.service.clone();
    let task_shared = shared.clone();
    let watch = shared
        .extensions
        .get::<Observers>()
        .map(|o| (o.clone(), req.method().clone(), std::time::Instant::now()));
    // A call's log lines are in its span, within its connection's.
    let span = tracing::info_span!("call", id = id.get(), method = %req.method(), path = %req.uri().path());
    let task = Box::pin(tracing::Instrument::instrument(
        async move {
            let head_sent = AtomicBool::new(false);
            let serve = serve(&task_shared, id, req, service, &head_sent);
            let outcome = match deadline {
                Some(d) => tokio::time::timeout_at(d, serve).await.ok(),
                None => Some(serve.await),
            };
            let answered = match &outcome {
                Some(Ok(a)) => a.clone(),
                Some(Err(())) => Answered::status(500),
                None => Answered::status(504),
            };
            match outcome {
                Some(Ok(_)) => {}
                Some(Err(())) => {
                    // A panicking handler (or response body) fails its own call, nothing else.
                    crate::logging::limited("handler-panicked", || {
                        tracing::error!(call = id.get(), "handler panicked");
                    });
                    let _ =
                        task_shared.with_conn(|c| c.send_reset(id, 500, "the handler panicked"));
                }
                None => deadline_passed(&task_shared, id, head_sent.load(Ordering::Acquire)),
            }
            task_shared.finish_served(id);
            // What the handler read is given back once its answer is out.
            drop(hold);
            if let Some((observers, method, started)) = watch {
                let peer = task_shared.extensions.get::<crate::Peer>();
                observers.emit(&Event::Call {
                    peer,
                    method: &method,
                    route: answered.route.as_ref().map_or(UNMATCHED, |r| &r.0),
                    status: answered.status,
                    duration: started.elapsed(),
                    request_bytes,
                    response_bytes: answered.bytes,
                });
            }
        },
        span,
    ));
    st.slots.insert(id, slot);
    st.ready.push(Ready { id, task });
}

/// How a served call was answered, for its observers.
#[derive(Clone)]
struct Answered {
    status: u16,
    route: Option<MatchedRoute>,
    bytes: u64,
}

impl Answered {
    fn status(status: u16) -> Self {
        Self {
            status,
            route: None,
            bytes: 0,
        }
    }
}

/// A call refused before it started: one of the caller's budgets is spent.
fn refuse(shared: &Shared, st: &mut State, id: CallId, over: &OverBudget) {
    if let Some(o) = shared.extensions.get::<Observers>() {
        o.emit(&Event::Refused {
            peer: shared.extensions.get::<crate::Peer>(),
            reason: over.reason(),
            status: over.status().as_u16(),
        });
    }
    let msg = over.to_string();
    crate::logging::limited("over-budget", || {
        tracing::warn!(call = id.get(), "{msg}; call refused");
    });
    let _ = st.conn.send_reset(id, over.status().as_u16(), &msg);
}

/// A served call whose handler has not run yet.
pub(super) struct Ready {
    id: CallId,
    task: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
}

/// Runs each call's handler until it first waits, on the reader's task: a handler that answers
/// at once (most do) costs no task of its own. One that waits becomes a task; the connection
/// cancels it as it would any task. Called without the lock.
pub(super) fn run_ready(shared: &Shared, ready: Vec<Ready>) {
    for Ready { id, mut task } in ready {
        if !shared.lock().slots.contains_key(&id) {
            // Cancelled before it started.
            continue;
        }
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        if task.as_mut().poll(&mut cx).is_ready() {
            continue;
        }
        // Polled again at once by the runtime, with a waker that works this time.
        let handle = tokio::spawn(task);
        match shared.lock().slots.get_mut(&id) {
            Some(slot) => slot.task = Some(handle.abort_handle()),
            None => handle.abort(),
        }
    }
}

async fn serve(
    shared: &Arc<Shared>,
    id: CallId,
    req: Request,
    service: Option<super::Served>,
    head_sent: &AtomicBool,
) -> Result<Answered, ()> {
    let run = async {
        let res = match service {
            Some(mut s) => match s.call(req).await {
                Ok(res) => res,
                Err(never) => match never {},
            },
            None => {
                let err = ApiError::not_found("this peer serves no routes");
                let mut res = Response::new(Body::from_bytes(err.to_json()));
                *res.status_mut() = err.status_code();
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                res
            }
        };
        respond(shared, id, res, head_sent).await
    };
    futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(run))
        .await
        .map_err(|_| ())
}

/// The budget ran out: before the answer, `RESET 504`; during a stream, an error trailer the
/// caller reads as a timeout; during another body, `RESET 504`.
fn deadline_passed(shared: &Shared, id: CallId, head_sent: bool) {
    let stream = head_sent && shared.lock().slots.get(&id).is_some_and(|s| s.ndjson);
    let _ = shared.with_conn(|c| {
        if stream {
            let mut t = HeaderMap::new();
            t.insert(TRAILER_END, HeaderValue::from_static(END_ERROR));
            let json = ApiError::new(http::StatusCode::GATEWAY_TIMEOUT, DEADLINE_PASSED).to_json();
            if let Ok(v) = HeaderValue::from_bytes(&json) {
                t.insert(TRAILER_ERROR, v);
            }
            c.send_trailers(id, &t)
        } else {
            c.send_reset(id, 504, DEADLINE_PASSED)
        }
    });
}

/// Sends an answer: head and small bodies in one write, larger bodies within the windows.
async fn respond(
    shared: &Arc<Shared>,
    id: CallId,
    res: Response,
    head_sent: &AtomicBool,
) -> Answered {
    let (mut parts, body) = res.into_parts();
    let route = parts.extensions.remove::<MatchedRoute>();
    let mut bytes = body.as_full().map_or(0, |b| b.len() as u64);
    let ndjson = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(NDJSON.as_bytes()));
    let status = parts.status.as_u16();
    let inline = {
        let mut st = shared.lock();
        if let Some(s) = st.slots.get_mut(&id) {
            s.ndjson = ndjson;
        }
        let full = body.as_full();
        let end = full.is_some_and(<[u8]>::is_empty);
        let sent = st.conn.send_response(id, status, &parts.headers, end);
        let inline = match sent {
            Err(SendError::Encode(e)) => {
                let msg = format!("the response head could not be encoded: {e}");
                crate::logging::limited("bad-response-head", || {
                    tracing::error!(call = id.get(), error = %e, "response head could not be encoded");
                });
                let _ = st.conn.send_reset(id, 500, &msg);
                true
            }
            Err(_) => true,
            Ok(()) if end => true,
            Ok(()) => match full {
                Some(b) if b.len() <= st.conn.send_capacity(id) && st.conn.can_send_data() => {
                    let _ = st.conn.send_data(id, b, true);
                    true
                }
                _ => false,
            },
        };
        drop(st);
        head_sent.store(true, Ordering::Release);
        shared.writer_wake.notify_one();
        inline
    };
    if !inline {
        bytes = call::pump_body(shared.clone(), id, body).await;
    }
    Answered {
        status,
        route,
        bytes,
    }
}
