use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use futures_core::Stream;
use http::{HeaderMap, HeaderValue, header};
use http_body::Frame;
use serde::Serialize;

use super::{IntoResponse, Response};
use crate::{ApiError, Body, BoxError};

pub(crate) use crate::proto::headers::{END_ERROR, END_OK, TRAILER_END, TRAILER_ERROR};

/// Items are batched into one body chunk while they are ready, up to this many bytes.
const BATCH_BYTES: usize = 16 * 1024;

type BoxItemStream<T> = Pin<Box<dyn Stream<Item = Result<T, ApiError>> + Send>>;

/// The response of a `#[stream]` route: JSON items sent as they are produced.
///
/// On the wire the body is newline-delimited JSON (one item per line), followed by an end
/// marker saying whether the stream ended well. An `Err` item ends the stream with an error
/// that the client sees as an error, never as a silent end.
///
/// ```
/// use rrssh::response::JsonStream;
///
/// async fn ticks() -> JsonStream<u32> {
///     JsonStream::new(futures_util::stream::iter(0..10))
/// }
/// ```
pub struct JsonStream<T> {
    inner: BoxItemStream<T>,
}

impl<T> JsonStream<T>
where
    T: Serialize + Send + 'static,
{
    /// A stream of items that cannot fail.
    pub fn new<S>(stream: S) -> Self
    where
        S: Stream<Item = T> + Send + 'static,
    {
        Self {
            inner: Box::pin(futures_util::StreamExt::map(stream, Ok)),
        }
    }

    /// A stream of results: the first `Err` ends the stream with that error.
    pub fn try_new<S, E>(stream: S) -> Self
    where
        S: Stream<Item = Result<T, E>> + Send + 'static,
        E: Into<ApiError>,
    {
        Self {
            inner: Box::pin(futures_util::StreamExt::map(stream, |r| {
                r.map_err(Into::into)
            })),
        }
    }
}

impl<T> fmt::Debug for JsonStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonStream").finish_non_exhaustive()
    }
}

impl<T: Serialize + Send + 'static> IntoResponse for JsonStream<T> {
    fn into_response(self) -> Response {
        let body = Body::new(StreamBody {
            items: self.inner,
            end: None,
            done: false,
        });
        let mut res = Response::new(body);
        res.headers_mut()
            .insert(header::CONTENT_TYPE, super::APPLICATION_NDJSON);
        res
    }
}

struct StreamBody<T> {
    items: BoxItemStream<T>,
    /// Set once the items are over: the end marker still to send.
    end: Option<End>,
    done: bool,
}

/// How a stream ended.
enum End {
    Ok,
    Failed(ApiError),
}

impl End {
    fn error(&self) -> Option<&ApiError> {
        match self {
            End::Ok => None,
            End::Failed(e) => Some(e),
        }
    }
}

fn end_trailers(error: Option<&ApiError>) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(2);
    match error {
        None => {
            map.insert(TRAILER_END, HeaderValue::from_static(END_OK));
        }
        Some(e) => {
            map.insert(TRAILER_END, HeaderValue::from_static(END_ERROR));
            if let Ok(v) = HeaderValue::from_bytes(&e.to_json()) {
                map.insert(TRAILER_ERROR, v);
            }
        }
    }
    map
}

impl<T: Serialize> http_body::Body for StreamBody<T> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(end) = self.end.take() {
            self.done = true;
            return Poll::Ready(Some(Ok(Frame::trailers(end_trailers(end.error())))));
        }
        let mut buf = BytesMut::with_capacity(BATCH_BYTES);
        loop {
            match self.items.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(item))) => {
                    if let Err(e) = super::encode_json(&mut buf, &item) {
                        let msg = format!("stream item did not serialize: {e}");
                        self.end = Some(End::Failed(ApiError::internal(msg)));
                        break;
                    }
                    buf.put_u8(b'\n');
                    if buf.len() >= BATCH_BYTES {
                        break;
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    self.end = Some(End::Failed(e));
                    break;
                }
                Poll::Ready(None) => {
                    self.end = Some(End::Ok);
                    break;
                }
                Poll::Pending => break,
            }
        }
        if !buf.is_empty() {
            return Poll::Ready(Some(Ok(Frame::data(buf.freeze()))));
        }
        match self.end.take() {
            Some(end) => {
                self.done = true;
                Poll::Ready(Some(Ok(Frame::trailers(end_trailers(end.error())))))
            }
            None => Poll::Pending,
        }
    }
}

/// Marks the return types a `#[stream]` route may have: [`JsonStream<T>`], or a `Result`
/// whose success is one.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a stream response",
    note = "a `#[stream]` handler must return `JsonStream<T>` or `Result<JsonStream<T>, E>`"
)]
pub trait StreamResponse: IntoResponse {}

impl<T: Serialize + Send + 'static> StreamResponse for JsonStream<T> {}
impl<T: Serialize + Send + 'static, E: IntoResponse> StreamResponse for Result<JsonStream<T>, E> {}
