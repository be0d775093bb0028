//! Handing the core's events to the calls they are for.

use std::sync::Arc;

use http::StatusCode;

use bytes::Bytes;

use super::body::{Arrived, BodyEnd, RecvBody, Refused, Side};
use super::serve::{self, Incoming};
use super::{Shared, State, call};
use crate::budget::OverBudget;
use crate::client::Error;
use crate::proto::CallId;
use crate::proto::Event;
use crate::{ApiError, Response};

impl Shared {
    /// Hands every queued event to its call. Runs under the lock.
    ///
    /// A head whose whole body came in the same read (a small request or answer, the common
    /// case) gets that body as a plain one: no queue, waker or timer, and its window is given
    /// back at once.
    pub(super) fn dispatch(self: &Arc<Self>, st: &mut State) {
        let mut next = st.conn.poll_event();
        while let Some(ev) = next.take() {
            next = st.conn.poll_event();
            let head_call = match &ev {
                Event::Request {
                    call, end: false, ..
                }
                | Event::Response {
                    call, end: false, ..
                } => Some(*call),
                _ => None,
            };
            let arrived = match (head_call, &next) {
                (
                    Some(h),
                    Some(Event::Data {
                        call, end: true, ..
                    }),
                ) if *call == h => {
                    let Some(Event::Data { data, .. }) = next.take() else {
                        unreachable!("matched just above")
                    };
                    next = st.conn.poll_event();
                    st.conn.consume(h, data.len());
                    Arrived::Whole(Bytes::copy_from_slice(&data))
                }
                (Some(_), _) => Arrived::Streaming,
                (None, _) => Arrived::Nothing,
            };
            self.on_event(st, ev, arrived);
        }
    }

    /// Closes after the carrier failed: no `GOAWAY` can be sent.
    pub(super) fn close_quietly(self: &Arc<Self>, why: &str) {
        let mut st = self.lock();
        st.conn.handle_eof(Some(why));
        self.dispatch(&mut st);
    }

    /// `arrived` is what came of a head's body with it (`Nothing` for other events).
    fn on_event(self: &Arc<Self>, st: &mut State, ev: Event, arrived: Arrived) {
        match ev {
            Event::Request {
                call,
                method,
                target,
                headers,
                end,
            } => serve::start(
                self,
                st,
                Incoming {
                    call,
                    method,
                    target,
                    headers,
                    body: if end { Arrived::Nothing } else { arrived },
                },
            ),
            Event::Response {
                call,
                status,
                headers,
                end,
            } => {
                let Some(slot) = st.slots.get_mut(&call) else {
                    return;
                };
                let Some(head) = slot.head.take() else {
                    return;
                };
                let arrived = if end { Arrived::Nothing } else { arrived };
                let complete = !matches!(arrived, Arrived::Streaming);
                let body = RecvBody::open(self, slot, call, Side::Outgoing, arrived);
                if complete {
                    self.forget(st, call);
                }
                let mut res = Response::new(body);
                *res.status_mut() =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                *res.headers_mut() = headers;
                st.outbox.answer(head, Ok(res));
            }
            Event::Data { call, data, end } => {
                let queue = st.slots.get(&call).and_then(|s| s.body.as_ref());
                match queue.map(|q| q.push(&data)) {
                    Some(Ok(Some(waker))) => st.outbox.wake(waker),
                    Some(Ok(None)) => {}
                    Some(Err(Refused::Dropped)) | None => st.conn.consume(call, data.len()),
                    Some(Err(Refused::Over(over))) => {
                        st.conn.consume(call, data.len());
                        return self.refuse_body(st, call, over);
                    }
                }
                if end {
                    self.body_ended(st, call, BodyEnd::Done(None));
                }
            }
            Event::Trailers { call, trailers } => {
                self.body_ended(st, call, BodyEnd::Done(Some(trailers)));
            }
            Event::Reset {
                call,
                status,
                message,
            } => {
                let Some(slot) = st.slots.get_mut(&call) else {
                    return;
                };
                if !slot.outgoing {
                    // The caller's request body failed; the handler sees a body error.
                    if let Some(q) = slot.body.take() {
                        st.outbox.end_body(q, BodyEnd::Reset(message));
                    }
                    return;
                }
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                if let Some(h) = slot.head.take() {
                    let answer = Err(Error::Status {
                        status,
                        body: ApiError::new(status, message),
                    });
                    st.outbox.answer(h, answer);
                } else if let Some(q) = slot.body.take() {
                    let end = BodyEnd::Reset(format!("call reset by the peer: {status} {message}"));
                    st.outbox.end_body(q, end);
                }
                self.forget(st, call);
            }
            Event::Cancel { call } => self.forget(st, call),
            Event::Capacity { call } => {
                st.blocked.remove(&call);
                if let Some(s) = st.slots.get(&call) {
                    s.capacity.notify_one();
                }
            }
            Event::ConnectionCapacity => call::wake_blocked(st),
            Event::GoAway { code, message, .. } => {
                tracing::debug!(code, reason = %message, "peer is going away");
                let shown = st.conn.peer_going_away().unwrap_or_default().to_owned();
                self.goaway_tx.send_replace(Some(shown));
            }
            Event::Closed { reason } => self.on_closed(st, &reason),
        }
    }

    /// A body that would pass one of the peer's budgets: the call is refused (a served one
    /// reset with the budget's status, ours cancelled) and its reader told why. What arrived
    /// of it was given back to the window, so the connection's other calls go on.
    fn refuse_body(self: &Arc<Self>, st: &mut State, call: CallId, over: OverBudget) {
        let msg = over.to_string();
        crate::logging::limited("over-budget", || {
            tracing::warn!(call = call.get(), "{msg}; call refused");
        });
        let Some(slot) = st.slots.get_mut(&call) else {
            return;
        };
        let outgoing = slot.outgoing;
        if let Some(q) = slot.body.take() {
            st.outbox.end_body(q, BodyEnd::Refused(over.clone()));
        }
        if outgoing {
            st.conn.cancel(call);
            self.forget(st, call);
        } else {
            let _ = st.conn.send_reset(call, over.status().as_u16(), &msg);
        }
    }

    fn body_ended(self: &Arc<Self>, st: &mut State, call: CallId, end: BodyEnd) {
        let Some(slot) = st.slots.get_mut(&call) else {
            return;
        };
        if let Some(q) = slot.body.take() {
            st.outbox.end_body(q, end);
        }
        if slot.outgoing {
            // The answer is complete: the call is over (a request body still being sent is
            // not needed any more).
            self.forget(st, call);
        }
    }

    /// Removes a call's slot; the outbox stops its task and drops it, unlocked.
    fn forget(&self, st: &mut State, call: CallId) {
        st.blocked.remove(&call);
        if let Some(s) = st.slots.remove(&call) {
            st.outbox.forget(s);
        }
        self.call_done.notify_waiters();
    }
}
