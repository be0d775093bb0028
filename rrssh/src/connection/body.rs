//! The receiving side of a call's body: the reader task appends what arrives, the application
//! takes it, and every byte taken gives window back to the peer.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::Frame;

use super::Shared;
use crate::BoxError;
use crate::body::BodyIdle;
use crate::budget::{Account, Charge, OverBudget};
use crate::client::Error;
use crate::proto::CallId;

/// The most one poll hands to the application.
const TAKE_CHUNK: usize = 64 * 1024;

/// How a body ended.
#[derive(Debug)]
pub(super) enum BodyEnd {
    /// Complete, with trailers if any.
    Done(Option<HeaderMap>),
    /// Reset by the peer.
    Reset(String),
    /// The connection was lost.
    Lost(String),
    /// Refused: holding it would pass one of the peer's budgets.
    Refused(OverBudget),
}

#[derive(Debug, Default)]
struct Queue {
    /// Bytes not yet taken, copied together: a flood of tiny DATA frames costs what its bytes
    /// cost, within the windows.
    tail: BytesMut,
    /// What `tail` holds, charged to the peer's budgets.
    charge: Charge,
    end: Option<BodyEnd>,
    waker: Option<Waker>,
    /// The application dropped the body: what arrives is given back at once.
    dropped: bool,
}

/// Why bytes were not queued (the caller gives them back to the window).
#[derive(Debug)]
pub(super) enum Refused {
    /// Nobody will read them.
    Dropped,
    /// Holding them would pass one of the peer's budgets.
    Over(OverBudget),
}

/// The buffer between the reader and one body.
#[derive(Debug, Default)]
pub(super) struct BodyQueue(Mutex<Queue>);

impl BodyQueue {
    /// A queue whose bytes are charged to `account`.
    pub(super) fn charged_to(account: Account) -> Self {
        Self(Mutex::new(Queue {
            charge: Charge::new(account),
            ..Queue::default()
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends bytes, or says why not; on success, the reader's waker, to wake once no lock
    /// is held.
    pub(super) fn push(&self, data: &[u8]) -> Result<Option<Waker>, Refused> {
        let mut q = self.lock();
        if q.dropped {
            return Err(Refused::Dropped);
        }
        if data.is_empty() {
            return Ok(None);
        }
        q.charge.grow(data.len()).map_err(Refused::Over)?;
        // Copied: a payload kept as a view would pin the whole read buffer it came in.
        q.tail.extend_from_slice(data);
        Ok(q.waker.take())
    }

    /// Ends the body (the first end counts) and wakes its reader, unlocked.
    pub(super) fn finish(&self, end: BodyEnd) {
        let waker = {
            let mut q = self.lock();
            if q.end.is_none() {
                q.end = Some(end);
            }
            q.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Marks the body dropped; returns how many bytes were still unread. What it held is
    /// freed once its lock is released.
    fn drop_reader(&self) -> usize {
        let (tail, waker) = {
            let mut q = self.lock();
            q.dropped = true;
            let held = q.charge.held();
            q.charge.shrink(held);
            (std::mem::take(&mut q.tail), q.waker.take())
        };
        let n = tail.len();
        drop((tail, waker));
        n
    }
}

/// How much of a body came with its head.
#[derive(Debug)]
pub(super) enum Arrived {
    /// None will come: the head ended the call's body.
    Nothing,
    /// All of it, in the same read as the head (a copy, so it pins no read buffer).
    Whole(Bytes),
    /// Some or none yet; the rest arrives through the queue.
    Streaming,
}

/// Which table the call is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    /// A call we made: this is its response body.
    Outgoing,
    /// A call the peer made: this is its request body.
    Incoming,
}

/// A body fed by the connection.
pub(super) struct RecvBody {
    pub(super) queue: Arc<BodyQueue>,
    pub(super) shared: Arc<Shared>,
    pub(super) call: CallId,
    pub(super) side: Side,
    pub(super) done: bool,
    /// The caller's deadline also bounds reading the answer.
    pub(super) deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// A served call's body: how long it may stay silent, and the timer.
    pub(super) idle: Option<(std::time::Duration, Pin<Box<tokio::time::Sleep>>)>,
}

impl RecvBody {
    /// The body of a call: a plain body when it already arrived whole (no queue, no waker, no
    /// timer), else a queue that goes into `slot`, where the reader finds it.
    pub(super) fn open(
        shared: &Arc<Shared>,
        slot: &mut super::Slot,
        call: CallId,
        side: Side,
        arrived: Arrived,
    ) -> crate::Body {
        match arrived {
            Arrived::Nothing => return crate::Body::empty(),
            Arrived::Whole(b) => return crate::Body::from_bytes(b),
            Arrived::Streaming => {}
        }
        // Unread bytes count for the key and the server; the connection's own budget is for
        // bodies read whole.
        let queue = Arc::new(BodyQueue::charged_to(shared.account.without_connection()));
        slot.body = Some(queue.clone());
        let idle = (side == Side::Incoming && !shared.body_idle.is_zero()).then(|| {
            (
                shared.body_idle,
                Box::pin(tokio::time::sleep(shared.body_idle)),
            )
        });
        crate::Body::new(RecvBody {
            queue,
            shared: shared.clone(),
            call,
            side,
            done: false,
            deadline: slot.deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
            idle,
        })
    }
}

/// A body error with the message the connection gave.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct BodyError(pub(crate) String);

impl http_body::Body for RecvBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let mut replaced = None;
        let taken = {
            let mut q = self.queue.lock();
            if !q.tail.is_empty() {
                // At most a chunk at a time: what is taken is granted back to the peer.
                let n = q.tail.len().min(TAKE_CHUNK);
                q.charge.shrink(n);
                Ok(q.tail.split_to(n).freeze())
            } else if let Some(end) = q.end.take() {
                Err(Some(end))
            } else {
                if !q.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    replaced = q.waker.replace(cx.waker().clone());
                }
                Err(None)
            }
        };
        // A waker this poll replaced is dropped unlocked.
        drop(replaced);
        match taken {
            Ok(b) => {
                if let Some((d, timer)) = &mut self.idle {
                    let next = tokio::time::Instant::now() + *d;
                    timer.as_mut().reset(next);
                }
                self.shared.consume(self.call, b.len());
                Poll::Ready(Some(Ok(Frame::data(b))))
            }
            Err(Some(end)) => {
                self.done = true;
                match end {
                    BodyEnd::Done(trailers) => {
                        Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))))
                    }
                    BodyEnd::Reset(e) => Poll::Ready(Some(Err(Box::new(BodyError(e))))),
                    BodyEnd::Refused(over) => Poll::Ready(Some(Err(Box::new(over)))),
                    BodyEnd::Lost(reason) => Poll::Ready(Some(Err(Box::new(Error::Unavailable(
                        format!("connection lost: {reason}"),
                    ))))),
                }
            }
            Err(None) => {
                if let Some(d) = &mut self.deadline
                    && d.as_mut().poll(cx).is_ready()
                {
                    self.done = true;
                    self.shared.cancel_outgoing(self.call);
                    return Poll::Ready(Some(Err(Box::new(Error::Timeout))));
                }
                if let Some((d, timer)) = &mut self.idle
                    && timer.as_mut().poll(cx).is_ready()
                {
                    let idle = BodyIdle(*d);
                    self.done = true;
                    let msg = idle.to_string();
                    let call = self.call;
                    crate::logging::limited("body-idle", || {
                        tracing::warn!(call = call.get(), "request body idle; call reset with 408");
                    });
                    let _ = self.shared.with_conn(|c| c.send_reset(call, 408, &msg));
                    return Poll::Ready(Some(Err(Box::new(idle))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

impl Drop for RecvBody {
    fn drop(&mut self) {
        let unread = self.queue.drop_reader();
        if unread > 0 {
            self.shared.consume(self.call, unread);
        }
        if !self.done && self.side == Side::Outgoing {
            // The caller stopped reading before the end: cancel the call.
            self.shared.cancel_outgoing(self.call);
        }
    }
}
