//! What a connection reports to the application, and its errors.

use bytes::Bytes;
use http::HeaderMap;

use super::super::CallId;
use super::super::frame::EncodeError;

/// Something the peer did that the application must act on, from
/// [`Conn::poll_event`](super::Conn::poll_event).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The peer started a call: serve it. `end`: the request has no body.
    Request {
        /// The call id.
        call: CallId,
        /// The method, an HTTP token.
        method: String,
        /// Path and query.
        target: String,
        /// The request headers.
        headers: HeaderMap,
        /// No body follows.
        end: bool,
    },
    /// The head of the answer to a call we made. `end`: no body follows.
    Response {
        /// The call id.
        call: CallId,
        /// The status code.
        status: u16,
        /// The response headers.
        headers: HeaderMap,
        /// No body follows.
        end: bool,
    },
    /// Body bytes of a call (request body on a served call, response body on ours). Report
    /// them with [`Conn::consume`](super::Conn::consume) once the application has taken them.
    Data {
        /// The call id.
        call: CallId,
        /// The bytes (may be empty when `end` is set).
        data: Bytes,
        /// The body is complete.
        end: bool,
    },
    /// The body ended with trailers.
    Trailers {
        /// The call id.
        call: CallId,
        /// The trailers.
        trailers: HeaderMap,
    },
    /// The peer reset a call: for a call we made, its answer (status and message) replaces
    /// the response or cuts its body short; for a served call, its request body failed.
    Reset {
        /// The call id.
        call: CallId,
        /// The status.
        status: u16,
        /// The message.
        message: String,
    },
    /// The peer cancelled a call it made: stop serving it, send nothing more.
    Cancel {
        /// The call id.
        call: CallId,
    },
    /// A call may send more body bytes ([`Conn::send_capacity`](super::Conn::send_capacity)).
    Capacity {
        /// The call id.
        call: CallId,
    },
    /// The connection window grew: every call waiting for capacity may go on.
    ConnectionCapacity,
    /// The peer takes no new calls.
    GoAway {
        /// The highest call id of ours the peer saw.
        last_call: CallId,
        /// The code (see [`goaway`](super::super::frame::goaway)).
        code: u16,
        /// The message.
        message: String,
    },
    /// The connection is over; every call on it is lost. After a violation the `GOAWAY` that
    /// says why is in the output.
    Closed {
        /// Why.
        reason: String,
    },
}

/// A rule the peer broke: the `GOAWAY` code and reason it is answered with before the
/// connection closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} (GOAWAY {code})")]
pub struct Violation {
    /// The `GOAWAY` code ([`goaway`](super::super::frame::goaway)).
    pub code: u16,
    /// What the peer did, said in the `GOAWAY`.
    pub reason: String,
}

impl Violation {
    /// A violation with this code.
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }

    /// A broken rule of the protocol (code 1).
    pub fn protocol(reason: impl Into<String>) -> Self {
        Self::new(super::super::frame::goaway::PROTOCOL_ERROR, reason)
    }

    /// Body bytes past a window, or a window grown past 2^31 − 1 (code 6).
    pub fn flow(reason: impl Into<String>) -> Self {
        Self::new(super::super::frame::goaway::FLOW_CONTROL, reason)
    }

    /// A malformed payload of a frame that must parse (code 1).
    pub fn malformed(e: super::super::frame::PayloadError) -> Self {
        Self::protocol(e.to_string())
    }
}

/// Why the application could not send something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The connection is closed.
    #[error("connection closed: {0}")]
    Closed(String),
    /// The peer said `GOAWAY`: no new calls.
    #[error("the peer is going away: {0}")]
    GoingAway(String),
    /// The peer takes no calls at all (its HELLO says `max_calls` 0: it only calls).
    #[error("the peer takes no calls (its HELLO says max_calls 0)")]
    TakesNoCalls,
    /// This side's call ids ran out on this connection (they never wrap): open another.
    #[error("no call ids are left on this connection; open a new one")]
    IdsExhausted,
    /// A head did not fit the wire format.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The call is over (cancelled, reset, or finished) or was never started.
    #[error("call {0} is not open for sending")]
    NotOpen(CallId),
    /// More body bytes than the windows allow ([`Conn::send_capacity`](super::Conn::send_capacity)).
    #[error("call {call}: {len} bytes is over the window of {available}")]
    OverWindow {
        /// The call id.
        call: CallId,
        /// What was offered.
        len: usize,
        /// What the windows allowed.
        available: usize,
    },
}
