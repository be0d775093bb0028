//! What a connection reports to the application, and its errors.

use bytes::Bytes;
use http::HeaderMap;

use super::super::frame::EncodeError;

/// Something the peer did that the application must act on, from
/// [`Conn::poll_event`](super::Conn::poll_event).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The peer started a call: serve it. `end`: the request has no body.
    Request {
        /// The call id.
        call: u32,
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
        call: u32,
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
        call: u32,
        /// The bytes (may be empty when `end` is set).
        data: Bytes,
        /// The body is complete.
        end: bool,
    },
    /// The body ended with trailers.
    Trailers {
        /// The call id.
        call: u32,
        /// The trailers.
        trailers: HeaderMap,
    },
    /// The peer reset a call: for a call we made, its answer (status and message) replaces
    /// the response or cuts its body short; for a served call, its request body failed.
    Reset {
        /// The call id.
        call: u32,
        /// The status.
        status: u16,
        /// The message.
        message: String,
    },
    /// The peer cancelled a call it made: stop serving it, send nothing more.
    Cancel {
        /// The call id.
        call: u32,
    },
    /// A call may send more body bytes ([`Conn::send_capacity`](super::Conn::send_capacity)).
    Capacity {
        /// The call id.
        call: u32,
    },
    /// The connection window grew: every call waiting for capacity may go on.
    ConnectionCapacity,
    /// The peer takes no new calls.
    GoAway {
        /// The highest call id of ours the peer saw.
        last_call: u32,
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
    /// A head did not fit the wire format.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The call is over (cancelled, reset, or finished) or was never started.
    #[error("call {0} is not open for sending")]
    NotOpen(u32),
    /// More body bytes than the windows allow ([`Conn::send_capacity`](super::Conn::send_capacity)).
    #[error("call {call}: {len} bytes is over the window of {available}")]
    OverWindow {
        /// The call id.
        call: u32,
        /// What was offered.
        len: usize,
        /// What the windows allowed.
        available: usize,
    },
}
