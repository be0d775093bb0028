//! Calls to the peer: the [`Service`] impl, the future of a call, and sending bodies within
//! the windows (shared with answers to served calls).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tower_service::Service;

use super::{Connection, Shared, Slot, State};
use crate::client::Error;
use crate::proto::Budget;
use crate::proto::CallId;
use crate::proto::SendError;
use crate::{Body, Request, Response};

/// Slack added to a caller's deadline before it gives up locally, so the peer's own 504 (which
/// says more) usually arrives first.
const DEADLINE_SLACK: Duration = Duration::from_millis(50);

/// Wakes every call waiting for connection window or output space.
pub(super) fn wake_blocked(st: &mut State) {
    for id in std::mem::take(&mut st.blocked) {
        if let Some(s) = st.slots.get(&id) {
            s.capacity.notify_one();
        }
    }
}

/// Waits until the call may send, and returns how many bytes; `None` once the call is over.
pub(super) async fn capacity(shared: &Shared, call: CallId) -> Option<usize> {
    loop {
        let notify = {
            let mut st = shared.lock();
            if !st.conn.is_call_open(call) {
                return None;
            }
            let n = st.conn.send_capacity(call);
            if n > 0 && st.conn.can_send_data() {
                return Some(n);
            }
            let notify = st.slots.get(&call)?.capacity.clone();
            st.blocked.insert(call);
            notify
        };
        notify.notified().await;
    }
}

/// Sends a body as DATA frames within the windows, then ends it (with trailers if it has
/// them); returns the bytes sent. A failing body resets the call with 500. The body is polled only when the windows
/// and the output have room, so backpressure reaches the producer before anything is made.
pub(super) async fn pump_body(shared: Arc<Shared>, call: CallId, mut body: Body) -> u64 {
    let mut total = 0u64;
    loop {
        // Pull the next frame only once it can be sent: a call whose reader stalls holds no
        // body bytes here, only its producer, suspended.
        if capacity(&shared, call).await.is_none() {
            return total;
        }
        let sent = match body.frame().await {
            None => shared.with_conn(|c| c.send_data(call, &[], true)),
            Some(Ok(f)) => match crate::body::trailers_of(f) {
                Ok(mut data) => {
                    while !data.is_empty() {
                        if capacity(&shared, call).await.is_none() {
                            return total;
                        }
                        // Sized and sent under one lock: another call may have taken the
                        // connection window since `capacity` looked (then 0 goes out, and
                        // this call waits again).
                        match shared.with_conn(|c| c.send_data_up_to(call, &data)) {
                            Ok(n) => {
                                bytes::Buf::advance(&mut data, n);
                                total += n as u64;
                            }
                            Err(_) => return total,
                        }
                    }
                    continue;
                }
                Err(trailers) => shared.with_conn(|c| c.send_trailers(call, &trailers)),
            },
            Some(Err(e)) => {
                let msg = format!("body failed: {e}");
                shared.with_conn(|c| c.send_reset(call, 500, &msg))
            }
        };
        if let Err(SendError::Encode(e)) = sent {
            let msg = format!("trailers could not be sent: {e}");
            let _ = shared.with_conn(|c| c.send_reset(call, 500, &msg));
        }
        return total;
    }
}

/// The future of a call on a [`Connection`].
pub struct ResponseFuture {
    state: FutState,
}

enum FutState {
    Failed(Option<Error>),
    Waiting {
        rx: oneshot::Receiver<Result<Response, Error>>,
        guard: CancelGuard,
        deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    },
}

/// Cancels the call when the caller drops its future before the answer came.
struct CancelGuard {
    shared: Arc<Shared>,
    id: CallId,
    armed: bool,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if self.armed {
            self.shared.cancel_outgoing(self.id);
        }
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            FutState::Failed(e) => Poll::Ready(Err(e
                .take()
                .unwrap_or(Error::Unavailable("polled after completion".into())))),
            FutState::Waiting {
                rx,
                guard,
                deadline,
            } => {
                if let Poll::Ready(r) = Pin::new(rx).poll(cx) {
                    guard.armed = false;
                    return Poll::Ready(match r {
                        Ok(r) => r,
                        Err(_) => Err(Error::Unavailable("connection closed".into())),
                    });
                }
                if let Some(d) = deadline
                    && d.as_mut().poll(cx).is_ready()
                {
                    // The guard cancels the call when the future is dropped.
                    return Poll::Ready(Err(Error::Timeout));
                }
                Poll::Pending
            }
        }
    }
}

impl Service<Request> for Connection {
    type Response = Response;
    type Error = Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> ResponseFuture {
        // A caller's deadline bounds the wait for the answer and the reading of its body.
        let deadline = match Budget::of_headers(req.headers()) {
            Ok(budget) => {
                budget.map(|b| tokio::time::Instant::now() + b.as_duration() + DEADLINE_SLACK)
            }
            Err(e) => {
                return ResponseFuture {
                    state: FutState::Failed(Some(Error::Encode(e.to_string()))),
                };
            }
        };
        match start_call(&self.shared, req, deadline) {
            Ok((id, rx)) => ResponseFuture {
                state: FutState::Waiting {
                    rx,
                    guard: CancelGuard {
                        shared: self.shared.clone(),
                        id,
                        armed: true,
                    },
                    deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
                },
            },
            Err(e) => ResponseFuture {
                state: FutState::Failed(Some(e)),
            },
        }
    }
}

type HeadRx = oneshot::Receiver<Result<Response, Error>>;

/// Sends a call's head (and a small body at once); a larger body is sent by a pump task.
fn start_call(
    shared: &Arc<Shared>,
    req: Request,
    deadline: Option<tokio::time::Instant>,
) -> Result<(CallId, HeadRx), Error> {
    let (parts, body) = req.into_parts();
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let full: Option<Bytes> = body.as_full().map(Bytes::copy_from_slice);
    let (head_tx, head_rx) = oneshot::channel();
    let mut st = shared.lock();
    let empty = full.as_ref().is_some_and(Bytes::is_empty);
    let id = st
        .conn
        .start_request(parts.method.as_str(), target, &parts.headers, empty)
        .map_err(|e| match e {
            SendError::GoingAway(why) => {
                Error::Unavailable(format!("the peer is going away: {why}"))
            }
            SendError::Encode(e) => Error::Encode(e.to_string()),
            other => Error::Unavailable(other.to_string()),
        })?;
    let inline = match &full {
        Some(b) if b.is_empty() => true,
        Some(b) if b.len() <= st.conn.send_capacity(id) && st.conn.can_send_data() => {
            st.conn
                .send_data(id, b, true)
                .map_err(|e| Error::Encode(e.to_string()))?;
            true
        }
        _ => false,
    };
    st.slots.insert(
        id,
        Slot {
            head: Some(head_tx),
            outgoing: true,
            deadline,
            ..Slot::default()
        },
    );
    if !inline {
        let pump = tokio::spawn(pump_body(shared.clone(), id, body));
        if let Some(s) = st.slots.get_mut(&id) {
            s.task = Some(pump.abort_handle());
        }
    }
    drop(st);
    shared.writer_wake.notify_one();
    Ok((id, head_rx))
}
