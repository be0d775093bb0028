//! Byte streams: a file, a log or a backup as a handler's answer or request body, and as what a
//! typed call returns or sends.

use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;

use crate::client::{Error, FromResponse};
use crate::extract::FromRequest;
use crate::response::IntoResponse;
use crate::{Body, BoxError, Request, Response};

/// A stream of bytes, both ways: a handler returns one (a file, a log, a backup) or takes one
/// as its request body (an upload), and a typed call returns one or sends one, with the same
/// flow control, deadlines and cancellation as every call. Read it as a
/// [`Stream`] of `Result<Bytes, Error>` chunks or, with [`into_async_read`](Self::into_async_read),
/// as an [`AsyncRead`](tokio::io::AsyncRead).
///
/// A stream ends cleanly only when its producer finished: one whose producer failed, whose
/// connection was lost or whose deadline passed ends with an error, never a short success.
///
/// ```
/// use bytes::Bytes;
/// use rrssh::{get, ByteStream};
///
/// /// The log, as it is written.
/// #[get("/log")]
/// async fn log() -> ByteStream {
///     ByteStream::new(futures_util::stream::iter(
///         ["line 1\n", "line 2\n"].map(|l| Ok::<_, std::io::Error>(Bytes::from(l))),
///     ))
/// }
/// ```
pub struct ByteStream(Body);

impl ByteStream {
    /// The chunks of `stream`; an `Err` ends the stream with an error the reader sees.
    pub fn new<S, E>(stream: S) -> Self
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        Self(Body::from_stream(stream))
    }

    /// The bytes of a body.
    pub fn from_body(body: Body) -> Self {
        Self(body)
    }

    /// The body it streams.
    pub fn into_body(self) -> Body {
        self.0
    }

    /// The stream as an [`AsyncRead`](tokio::io::AsyncRead); an error of the stream is an
    /// [`std::io::Error`] of kind `Other` wrapping it.
    pub fn into_async_read(self) -> impl tokio::io::AsyncRead + Send + Unpin {
        tokio_util::io::StreamReader::new(futures_util::StreamExt::map(self, |r| {
            r.map_err(std::io::Error::other)
        }))
    }
}

impl fmt::Debug for ByteStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ByteStream").field(&self.0).finish()
    }
}

impl From<ByteStream> for Body {
    fn from(s: ByteStream) -> Self {
        s.0
    }
}

impl Stream for ByteStream {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let frame = match http_body::Body::poll_frame(Pin::new(&mut self.0), cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Some(Err(Error::from_boxed(e))));
                }
                Poll::Ready(Some(Ok(f))) => f,
            };
            // Trailers carry nothing for a byte stream; empty chunks are skipped.
            if let Ok(data) = frame.into_data()
                && !data.is_empty()
            {
                return Poll::Ready(Some(Ok(data)));
            }
        }
    }
}

/// `application/octet-stream`, streamed as the chunks come.
impl IntoResponse for ByteStream {
    fn into_response(self) -> Response {
        let mut res = Response::new(self.into_body());
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/octet-stream"),
        );
        res
    }
}

/// A request body read as it arrives (an upload), without the body limit of the extractors
/// that read it whole: the connection's flow control bounds what is buffered.
impl<S: Send + Sync> FromRequest<S> for ByteStream {
    type Rejection = Infallible;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ByteStream::from_body(req.into_body()))
    }
}

impl FromResponse for ByteStream {
    type Output = ByteStream;

    async fn from_response(res: Response) -> Result<ByteStream, Error> {
        Ok(ByteStream::from_body(
            crate::client::check_status(res).await?.into_body(),
        ))
    }
}
