use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use futures_core::Stream;
use http_body::Body as _;
use serde::de::DeserializeOwned;

use super::Error;
use crate::response::{END_ERROR, END_OK, TRAILER_END, TRAILER_ERROR};
use crate::{ApiError, Body};

/// The items of a streamed response, decoded as they arrive.
///
/// Ends with `None` only when the server said the stream finished well; a stream that ended
/// with an error yields that error ([`Error::Status`]) and a stream cut short yields
/// [`Error::Truncated`]. Dropping it cancels the call.
pub struct ClientStream<T> {
    body: Body,
    buf: BytesMut,
    /// How much of `buf` is known to hold no newline.
    scanned: usize,
    done: bool,
    _t: PhantomData<fn() -> T>,
}

impl<T> ClientStream<T> {
    /// Reads the items of a newline-delimited JSON body with rrssh's end marker.
    pub fn new(body: Body) -> Self {
        Self {
            body,
            buf: BytesMut::new(),
            scanned: 0,
            done: false,
            _t: PhantomData,
        }
    }
}

impl<T> fmt::Debug for ClientStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientStream")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned> ClientStream<T> {
    fn next_line(&mut self) -> Option<Result<T, Error>> {
        let Some(found) = memchr::memchr(b'\n', &self.buf[self.scanned..]) else {
            self.scanned = self.buf.len();
            return None;
        };
        let pos = self.scanned + found;
        self.scanned = 0;
        let line = self.buf.split_to(pos + 1);
        Some(serde_json::from_slice(&line[..pos]).map_err(|e| Error::Decode(e.to_string())))
    }

    fn fail(&mut self, e: Error) -> Poll<Option<Result<T, Error>>> {
        self.done = true;
        Poll::Ready(Some(Err(e)))
    }
}

impl<T: DeserializeOwned> Stream for ClientStream<T> {
    type Item = Result<T, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(item) = self.next_line() {
                if item.is_err() {
                    self.done = true;
                }
                return Poll::Ready(Some(item));
            }
            if self.done {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
                Some(Ok(frame)) => match crate::body::trailers_of(frame) {
                    Ok(data) => self.buf.extend_from_slice(&data),
                    Err(trailers) => {
                        // A partial item (no final newline) is never an item: after an error
                        // end it is dropped and the error reported; after `ok` the stream
                        // was malformed.
                        let partial = !self.buf.is_empty();
                        self.buf.clear();
                        self.scanned = 0;
                        self.done = true;
                        match trailers.get(TRAILER_END).map(|v| v.as_bytes()) {
                            Some(v) if v == END_OK.as_bytes() && partial => {
                                return self.fail(Error::Protocol(
                                    "stream item without a final newline".into(),
                                ));
                            }
                            Some(v) if v == END_OK.as_bytes() => return Poll::Ready(None),
                            Some(v) if v == END_ERROR.as_bytes() => {
                                let body = trailers
                                    .get(TRAILER_ERROR)
                                    .map(|v| {
                                        ApiError::from_body(
                                            http::StatusCode::INTERNAL_SERVER_ERROR,
                                            v.as_bytes(),
                                        )
                                    })
                                    .unwrap_or_else(|| ApiError::internal("stream failed"));
                                // A stream cut by the caller's deadline is a timeout.
                                if body.status_code() == http::StatusCode::GATEWAY_TIMEOUT {
                                    return self.fail(Error::Timeout);
                                }
                                return self.fail(Error::from_api(body));
                            }
                            _ => return self.fail(Error::Truncated),
                        }
                    }
                },
                Some(Err(e)) => return self.fail(Error::from_boxed(e)),
                None => return self.fail(Error::Truncated),
            }
        }
    }
}
