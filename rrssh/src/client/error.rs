use http::StatusCode;

use crate::{ApiError, BoxError};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with a non-2xx status, with its error JSON decoded; a stream that
    /// ended with an error also gives this.
    #[error("server answered {status}: {}", body.message)]
    Status {
        /// The status.
        status: StatusCode,
        /// The standard error JSON the server sent.
        body: ApiError,
    },
    /// The connection to the peer is not available (never established, closed, or lost while
    /// the call was in flight). The call may or may not have run.
    #[error("peer unavailable: {0}")]
    Unavailable(String),
    /// The call's deadline passed before an answer arrived.
    #[error("deadline exceeded")]
    Timeout,
    /// The request could not be encoded (a path, query or body value did not serialize).
    #[error("could not encode the request: {0}")]
    Encode(String),
    /// The response did not decode as the expected type.
    #[error("could not decode the response: {0}")]
    Decode(String),
    /// A stream ended without its end marker: it was cut off, not finished.
    #[error("the stream ended without an end marker (connection lost?)")]
    Truncated,
    /// The peer broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// An error from a client-side layer or service.
    #[error(transparent)]
    Service(BoxError),
}

impl Error {
    /// The status of a [`Status`](Error::Status) error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Turns a boxed error back into an `Error` when it is one (a layer passed it through),
    /// or wraps it; tower's timeout elapsed error becomes [`Error::Timeout`].
    pub fn from_boxed(e: BoxError) -> Self {
        match e.downcast::<Error>() {
            Ok(e) => *e,
            Err(e) if e.to_string() == "request timed out" => Error::Timeout,
            Err(e) => Error::Service(e),
        }
    }

    pub(crate) fn from_api(body: ApiError) -> Self {
        Error::Status {
            status: body.status_code(),
            body,
        }
    }
}

impl From<std::convert::Infallible> for Error {
    fn from(e: std::convert::Infallible) -> Self {
        match e {}
    }
}
