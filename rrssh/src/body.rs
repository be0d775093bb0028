//! The request and response body type.

use std::any::Any;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use http::HeaderMap;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;

use crate::BoxError;

/// The body of every [`Request`](crate::Request) and [`Response`](crate::Response) in rrssh.
///
/// A body is either a buffer of bytes known in full (the common case, kept without boxing)
/// or a stream of frames: data chunks, optionally ended by a trailers frame. Streaming
/// responses (see [`JsonStream`](crate::response::JsonStream)) use trailers to say whether the
/// stream ended well or with an error.
pub struct Body(Inner);

enum Inner {
    Full(Option<Bytes>),
    Boxed(UnsyncBoxBody<Bytes, BoxError>),
}

impl Body {
    /// A body of any type implementing [`http_body::Body`]. A [`Body`] passed here is kept as is.
    pub fn new<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let mut slot = Some(body);
        if let Some(inner) = (&mut slot as &mut dyn Any).downcast_mut::<Option<Body>>() {
            return inner.take().unwrap_or_default();
        }
        let body = slot.unwrap_or_else(|| unreachable!("the slot was just filled"));
        Body(Inner::Boxed(body.map_err(Into::into).boxed_unsync()))
    }

    /// An empty body.
    pub const fn empty() -> Self {
        Body(Inner::Full(None))
    }

    /// A body holding these bytes.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        if bytes.is_empty() {
            Self::empty()
        } else {
            Body(Inner::Full(Some(bytes)))
        }
    }

    /// A body made of the chunks a stream yields.
    pub fn from_stream<S, E>(stream: S) -> Self
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        Self::from_frames(futures_util::StreamExt::map(stream, |r| r.map(Frame::data)))
    }

    /// A body made of the frames a stream yields (data chunks and, last, trailers).
    pub fn from_frames<S, E>(stream: S) -> Self
    where
        S: Stream<Item = Result<Frame<Bytes>, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        Self::new(http_body_util::StreamBody::new(
            futures_util::StreamExt::map(stream, |r| r.map_err(Into::into)),
        ))
    }

    /// The bytes of a body known in full, without polling; `None` for a streamed body.
    pub fn as_full(&self) -> Option<&[u8]> {
        match &self.0 {
            Inner::Full(b) => Some(b.as_deref().unwrap_or_default()),
            Inner::Boxed(_) => None,
        }
    }

    /// Reads the whole body, failing with [`LengthLimitError`] once more than `limit` bytes arrive.
    /// Trailers are discarded.
    pub async fn collect_limited(self, limit: usize) -> Result<Bytes, BoxError> {
        self.collect_within(limit, None).await
    }

    /// [`collect_limited`](Self::collect_limited), the bytes collected charged to `hold` (the
    /// served call's budgets) until the call is over; a read that would pass one fails with
    /// [`OverBudget`](crate::budget::OverBudget).
    pub(crate) async fn collect_within(
        self,
        limit: usize,
        hold: Option<&crate::budget::CallHold>,
    ) -> Result<Bytes, BoxError> {
        let mut charge = hold.map(crate::budget::CallHold::charge);
        let mut grow = |n: usize| -> Result<(), BoxError> {
            match &mut charge {
                Some(c) => c.grow(n).map_err(|e| Box::new(e) as BoxError),
                None => Ok(()),
            }
        };
        let bytes = match self.0 {
            // Charged when it arrived.
            Inner::Full(b) => {
                let b = b.unwrap_or_default();
                if b.len() > limit {
                    return Err(Box::new(LengthLimitError { limit }));
                }
                b
            }
            Inner::Boxed(mut body) => {
                // One chunk is kept as it is; more are copied into one buffer.
                let mut first: Option<Bytes> = None;
                let mut buf: Vec<u8> = Vec::new();
                let mut len = 0usize;
                // What is charged: the first chunk, then the buffer's capacity.
                let mut charged = 0usize;
                while let Some(frame) = body.frame().await {
                    let Ok(data) = frame?.into_data() else {
                        continue;
                    };
                    len += data.len();
                    if len > limit {
                        return Err(Box::new(LengthLimitError { limit }));
                    }
                    match first.take() {
                        None if buf.is_empty() => {
                            grow(data.len())?;
                            charged += data.len();
                            first = Some(data);
                        }
                        prev => {
                            // The buffer's capacity is what it holds (it grows by doubling).
                            let need = prev.as_ref().map_or(0, Bytes::len) + data.len();
                            if buf.capacity() - buf.len() < need {
                                let grown = (buf.len() + need).next_power_of_two().min(limit);
                                let grown = grown.max(buf.len() + need);
                                grow(grown.saturating_sub(charged))?;
                                charged = charged.max(grown);
                                buf.reserve_exact(grown - buf.len());
                            }
                            if let Some(prev) = prev {
                                buf.extend_from_slice(&prev);
                            }
                            buf.extend_from_slice(&data);
                        }
                    }
                }
                first.unwrap_or_else(|| Bytes::from(buf))
            }
        };
        if let (Some(hold), Some(c)) = (hold, charge) {
            hold.keep(c);
        }
        Ok(bytes)
    }

    /// The next frame of the body, if any.
    pub async fn frame(&mut self) -> Option<Result<Frame<Bytes>, BoxError>> {
        BodyExt::frame(self).await
    }

    /// A [`Stream`] of the data chunks of the body (trailers are skipped).
    pub fn into_data_stream(self) -> http_body_util::BodyDataStream<Self> {
        BodyExt::into_data_stream(self)
    }
}

impl Default for Body {
    fn default() -> Self {
        Self::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Full(b) => f
                .debug_tuple("Body")
                .field(&b.as_ref().map_or(0, Bytes::len))
                .finish(),
            Inner::Boxed(_) => f.write_str("Body(stream)"),
        }
    }
}

macro_rules! body_from {
    ($($ty:ty),*) => {$(
        impl From<$ty> for Body {
            fn from(v: $ty) -> Self { Body::from_bytes(Bytes::from(v)) }
        }
    )*};
}
body_from!(Bytes, Vec<u8>, String, &'static str, &'static [u8]);

impl From<()> for Body {
    fn from(_: ()) -> Self {
        Body::empty()
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match &mut self.0 {
            Inner::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Inner::Boxed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Full(b) => b.is_none(),
            Inner::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Inner::Boxed(body) => body.size_hint(),
        }
    }
}

/// A served call's request body stayed silent for the connection's `body_idle_timeout` while
/// its handler waited; the call was reset with 408.
#[derive(Debug, thiserror::Error)]
#[error("the request body sent nothing for {} s", .0.as_secs_f64())]
pub struct BodyIdle(pub std::time::Duration);

/// A body grew past the limit it was read with.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("body is larger than the limit of {limit} bytes")]
pub struct LengthLimitError {
    /// The limit, in bytes.
    pub limit: usize,
}

/// Trailers of a body, for streams: `None` when the body ended without any.
pub(crate) fn trailers_of(frame: Frame<Bytes>) -> Result<Bytes, HeaderMap> {
    frame
        .into_data()
        .map_err(|f| f.into_trailers().unwrap_or_default())
}
