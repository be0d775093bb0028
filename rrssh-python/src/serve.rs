//! Serving Python handlers: each route of an `rrssh.App` is a route of an rrssh router whose
//! handler hands the call to the event loop and waits for the Python handler's answer.
//!
//! A call the caller cancels (or whose deadline passes) cancels the Python task running it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use http_body::Frame;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use rrssh::proto::headers::{END_ERROR, END_OK, NDJSON, TRAILER_END, TRAILER_ERROR};
use rrssh::{ApiError, Body, IntoResponse, Path, Peer, Response};
use tokio::sync::{mpsc, oneshot};

use crate::bridge::{self, Inbox, Job, Run, awaitable};
use crate::errors::Error;

/// Stream lines waiting between a Python generator and the connection, per call.
const STREAM_QUEUE: usize = 16;

/// A Python handler's answer.
enum Answer {
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    Stream {
        rx: mpsc::Receiver<StreamPart>,
    },
}

/// What a Python stream sends: lines, then its end.
enum StreamPart {
    Lines(Bytes),
    Failed(ApiError),
}

/// The Rust side of one served call, shared with its `Reply`.
struct CallShared {
    answer: Mutex<Option<oneshot::Sender<Answer>>>,
    /// The asyncio task running the handler, to cancel when the call goes away.
    task: Mutex<Option<Py<PyAny>>>,
}

/// Cancels the Python task when the Rust handler is dropped before its answer came.
struct CancelOnDrop {
    call: Arc<CallShared>,
    inbox: Arc<Inbox>,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            let call = self.call.clone();
            self.inbox.push(Job::Run(Box::new(move |py| {
                let task = call.task.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(t) = task {
                    let _ = t.call_method0(py, "cancel");
                }
            })));
        }
    }
}

/// How a Python handler answers its call (`rrssh.App` uses it; handlers never see it).
#[pyclass(frozen, module = "rrssh._rrssh")]
pub(crate) struct Reply(Arc<CallShared>);

#[pymethods]
impl Reply {
    /// Which task runs the handler (cancelled if the caller goes away).
    fn bind(&self, task: Py<PyAny>) {
        *self.0.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    }

    /// The whole answer.
    fn send(&self, status: u16, headers: Vec<(String, String)>, body: Vec<u8>) {
        if let Some(tx) = self
            .0
            .answer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = tx.send(Answer::Full {
                status,
                headers,
                body,
            });
        }
        let task = self.0.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        // Released after the lock.
        drop(task);
    }

    /// Starts a stream answer; returns the sink its lines go to.
    fn stream(&self) -> Sink {
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        if let Some(answer) = self
            .0
            .answer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = answer.send(Answer::Stream { rx });
        }
        Sink(Mutex::new(Some(tx)))
    }
}

/// Where a Python stream's lines go, with backpressure: `send` waits while the caller reads
/// slower than the generator makes items.
#[pyclass(frozen, module = "rrssh._rrssh")]
pub(crate) struct Sink(Mutex<Option<mpsc::Sender<StreamPart>>>);

impl Sink {
    fn sender(&self) -> Option<mpsc::Sender<StreamPart>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[pymethods]
impl Sink {
    /// Queues NDJSON lines (each ending in `\n`) without waiting: `False` if the queue is
    /// full (then await `send`), or the call is gone.
    fn try_send(&self, lines: Vec<u8>) -> bool {
        self.sender()
            .is_some_and(|tx| tx.try_send(StreamPart::Lines(Bytes::from(lines))).is_ok())
    }

    /// Queues NDJSON lines, waiting for room; raises `Unavailable` if the caller went away.
    fn send<'py>(&self, py: Python<'py>, lines: Vec<u8>) -> PyResult<Bound<'py, PyAny>> {
        let tx = self.sender();
        awaitable(
            py,
            Run::OnRuntime,
            async move {
                let tx = tx.ok_or_else(|| Error::Unavailable("the stream is over".into()))?;
                tx.send(StreamPart::Lines(Bytes::from(lines)))
                    .await
                    .map_err(|_| Error::Unavailable("the caller went away".into()))
            },
            bridge::none,
        )
    }

    /// Ends the stream with an error the caller sees where it happened.
    fn fail(&self, status: u16, message: String) {
        let tx = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(tx) = tx {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let _ = tx.try_send(StreamPart::Failed(ApiError::new(status, message)));
        }
    }

    /// Ends the stream.
    fn close(&self) {
        let tx = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        // Dropped after the lock is released: that ends the stream.
        drop(tx);
    }
}

/// The NDJSON body of a Python stream, ended by rrssh's end-of-stream trailers.
fn stream_response(rx: mpsc::Receiver<StreamPart>) -> Response {
    let frames = frames_of(rx).map(Ok::<_, std::convert::Infallible>);
    let mut res = Response::new(Body::new(http_body_util::StreamBody::new(frames)));
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    res
}

/// The frames of a stream: its lines, then the trailers saying how it ended (a generator
/// that stops without closing its sink ended well).
fn frames_of(
    rx: mpsc::Receiver<StreamPart>,
) -> impl futures_util::Stream<Item = Frame<Bytes>> + Send {
    futures_util::stream::unfold(Some(rx), |rx| async move {
        let mut rx = rx?;
        let frame = match rx.recv().await {
            Some(StreamPart::Lines(b)) => return Some((Frame::data(b), Some(rx))),
            Some(StreamPart::Failed(e)) => {
                let mut t = HeaderMap::new();
                t.insert(TRAILER_END, HeaderValue::from_static(END_ERROR));
                if let Ok(v) = HeaderValue::from_bytes(&e.to_json()) {
                    t.insert(TRAILER_ERROR, v);
                }
                Frame::trailers(t)
            }
            None => {
                let mut t = HeaderMap::new();
                t.insert(TRAILER_END, HeaderValue::from_static(END_OK));
                Frame::trailers(t)
            }
        };
        Some((frame, None))
    })
}

fn full_response(status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Response {
    let mut res = Response::new(Body::from_bytes(body));
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            res.headers_mut().append(k, v);
        }
    }
    res
}

/// What a route needs to reach Python.
struct Ctx {
    inbox: Arc<Inbox>,
    /// `dispatch(index, params, target, headers, body, peer, reply)`, run on the loop.
    dispatch: Py<PyAny>,
}

fn peer_dict<'py>(py: Python<'py>, peer: &Peer) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("user", peer.user())?;
    d.set_item("fingerprint", peer.fingerprint())?;
    d.set_item("service", peer.service())?;
    d.set_item("comment", peer.comment())?;
    d.set_item("remote_addr", peer.remote_addr().map(|a| a.to_string()))?;
    Ok(d)
}

async fn handle(
    ctx: Arc<Ctx>,
    index: usize,
    params: HashMap<String, String>,
    uri: http::Uri,
    headers: HeaderMap,
    peer: Option<Peer>,
    body: Bytes,
) -> Response {
    let (tx, rx) = oneshot::channel();
    let call = Arc::new(CallShared {
        answer: Mutex::new(Some(tx)),
        task: Mutex::new(None),
    });
    let mut guard = CancelOnDrop {
        call: call.clone(),
        inbox: ctx.inbox.clone(),
        armed: true,
    };
    let job_ctx = ctx.clone();
    ctx.inbox.push(Job::Run(Box::new(move |py| {
        let run = || -> PyResult<()> {
            let p = PyDict::new(py);
            for (k, v) in &params {
                p.set_item(k, v)?;
            }
            let h = PyList::empty(py);
            for (k, v) in &headers {
                h.append((k.as_str(), String::from_utf8_lossy(v.as_bytes())))?;
            }
            let peer = match &peer {
                Some(peer) => peer_dict(py, peer)?.into_any(),
                None => py.None().into_bound(py),
            };
            let target = uri.path_and_query().map_or("/", |p| p.as_str());
            job_ctx.dispatch.call1(
                py,
                (
                    index,
                    p,
                    target,
                    h,
                    PyBytes::new(py, &body),
                    peer,
                    Reply(call),
                ),
            )?;
            Ok(())
        };
        if let Err(e) = run() {
            e.write_unraisable(py, None);
        }
    })));
    let answer = rx.await;
    guard.armed = false;
    match answer {
        Ok(Answer::Full {
            status,
            headers,
            body,
        }) => full_response(status, headers, body),
        Ok(Answer::Stream { rx }) => stream_response(rx),
        Err(_) => ApiError::internal("the Python handler gave no answer").into_response(),
    }
}

/// A router serving Python handlers.
#[pyclass(frozen, module = "rrssh._rrssh")]
pub(crate) struct Service(pub(crate) rrssh::Router);

#[pymethods]
impl Service {
    /// `Service(routes, dispatch)`: `routes` is `[(method, path, index)]`; `dispatch` is called
    /// on the running loop for each call.
    #[new]
    fn new(
        py: Python<'_>,
        routes: Vec<(String, String, usize)>,
        dispatch: Py<PyAny>,
    ) -> PyResult<Self> {
        let (_, inbox) = bridge::current(py)?;
        let ctx = Arc::new(Ctx { inbox, dispatch });
        let mut by_path: Vec<(String, Option<rrssh::routing::MethodRouter>)> = Vec::new();
        for (method, path, index) in routes {
            let m = http::Method::from_bytes(method.as_bytes())
                .map_err(|_| Error::Value(format!("invalid method {method:?}")).into_pyerr(py))?;
            let ctx = ctx.clone();
            // A route without captures has no `Path` at all.
            let handler = move |params: Option<Path<HashMap<String, String>>>,
                                uri: http::Uri,
                                headers: HeaderMap,
                                peer: Option<Peer>,
                                body: Bytes| {
                let ctx = ctx.clone();
                let params = params.map(|Path(p)| p).unwrap_or_default();
                handle(ctx, index, params, uri, headers, peer, body)
            };
            match by_path.iter_mut().find(|(p, _)| *p == path) {
                Some((_, mr)) => *mr = mr.take().map(|r| r.on(m, handler)),
                None => by_path.push((path, Some(rrssh::routing::on(m, handler)))),
            }
        }
        let mut router = rrssh::Router::new();
        for (path, mr) in by_path {
            let Some(mr) = mr else { continue };
            router =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| router.route(&path, mr)))
                    .map_err(|e| {
                        let msg = e
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                            .unwrap_or_else(|| "invalid route".into());
                        Error::Value(msg).into_pyerr(py)
                    })?;
        }
        Ok(Service(router))
    }
}
