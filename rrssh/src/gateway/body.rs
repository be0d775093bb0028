//! The body of a relayed response as HTTP carries it.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

use crate::response::{END_ERROR, END_OK, TRAILER_END, TRAILER_ERROR};
use crate::{Body, BoxError};

/// A peer's response body on its way to an HTTP caller.
///
/// A STREAM's items pass through as NDJSON lines, as they arrive. rrssh ends a stream with a
/// trailer saying whether it finished well; HTTP/1.1 clients rarely read trailers, so:
/// - a stream that finished well ends the HTTP body normally (with the trailers, for clients
///   that asked for them);
/// - a stream that failed gets one last line, `{"error": {…}}`, and then the body fails, so
///   the server aborts the response instead of ending it: the caller sees a transfer error,
///   never a complete-looking body;
/// - a stream cut short (the peer went away) fails the same way, without the extra line.
pub(crate) struct RelayBody {
    inner: Body,
    /// A 2xx answer to a STREAM: it must end with the end trailer.
    stream: bool,
    state: State,
}

enum State {
    Open,
    /// Fail after yielding once, so the HTTP server flushes what it holds before it aborts.
    Flush(BoxError),
    Fail(BoxError),
    Done,
}

impl RelayBody {
    pub(crate) fn new(inner: Body, stream: bool) -> Self {
        Self {
            inner,
            stream,
            state: State::Open,
        }
    }
}

impl http_body::Body for RelayBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match std::mem::replace(&mut this.state, State::Done) {
            State::Open => this.state = State::Open,
            State::Flush(e) => {
                this.state = State::Fail(e);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            State::Fail(e) => return Poll::Ready(Some(Err(e))),
            State::Done => return Poll::Ready(None),
        }
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match frame {
            Some(Ok(frame)) => {
                let Some(trailers) = frame.trailers_ref() else {
                    return Poll::Ready(Some(Ok(frame)));
                };
                match trailers.get(TRAILER_END).map(|v| v.as_bytes()) {
                    Some(v) if v == END_OK.as_bytes() => {
                        this.state = State::Done;
                        Poll::Ready(Some(Ok(frame)))
                    }
                    Some(v) if v == END_ERROR.as_bytes() => {
                        let mut line = trailers
                            .get(TRAILER_ERROR)
                            .map(|v| v.as_bytes().to_vec())
                            .unwrap_or_else(|| {
                                br#"{"error":{"status":500,"message":"stream failed"}}"#.to_vec()
                            });
                        line.push(b'\n');
                        this.state = State::Flush("the stream failed (see its last line)".into());
                        Poll::Ready(Some(Ok(Frame::data(Bytes::from(line)))))
                    }
                    _ if this.stream => {
                        this.state = State::Fail("the stream ended without its end marker".into());
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                    _ => Poll::Ready(Some(Ok(frame))),
                }
            }
            Some(Err(e)) => {
                this.state = State::Fail(e);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            None if this.stream => {
                this.state = State::Fail("the stream was cut short".into());
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            None => {
                this.state = State::Done;
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
            || (!self.stream && matches!(self.state, State::Open) && self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        if self.stream {
            SizeHint::default()
        } else {
            self.inner.size_hint()
        }
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue};
    use http_body_util::BodyExt;

    use super::*;

    fn frames(data: &[&'static str], end: Option<(&'static str, Option<&'static str>)>) -> Body {
        let mut frames: Vec<Result<Frame<Bytes>, BoxError>> = data
            .iter()
            .map(|d| Ok(Frame::data(Bytes::from_static(d.as_bytes()))))
            .collect();
        if let Some((end, error)) = end {
            let mut t = HeaderMap::new();
            t.insert(TRAILER_END, HeaderValue::from_static(end));
            if let Some(e) = error {
                t.insert(TRAILER_ERROR, HeaderValue::from_static(e));
            }
            frames.push(Ok(Frame::trailers(t)));
        }
        Body::from_frames(futures_util::stream::iter(frames))
    }

    async fn read(mut b: RelayBody) -> (String, Option<String>) {
        let mut text = String::new();
        while let Some(f) = b.frame().await {
            match f {
                Ok(f) => {
                    if let Ok(d) = f.into_data() {
                        text.push_str(std::str::from_utf8(&d).unwrap());
                    }
                }
                Err(e) => return (text, Some(e.to_string())),
            }
        }
        (text, None)
    }

    #[tokio::test]
    async fn a_stream_that_ends_well_ends_the_body() {
        let b = RelayBody::new(frames(&["1\n", "2\n"], Some((END_OK, None))), true);
        assert_eq!(read(b).await, ("1\n2\n".to_owned(), None));
    }

    #[tokio::test]
    async fn a_failed_stream_adds_its_error_and_fails() {
        let err = r#"{"error":{"status":500,"message":"disk"}}"#;
        let b = RelayBody::new(frames(&["1\n"], Some((END_ERROR, Some(err)))), true);
        let (text, fail) = read(b).await;
        assert_eq!(text, format!("1\n{err}\n"));
        assert!(fail.unwrap().contains("stream failed"));
    }

    #[tokio::test]
    async fn a_stream_cut_short_fails() {
        let b = RelayBody::new(frames(&["1\n"], None), true);
        let (text, fail) = read(b).await;
        assert_eq!(text, "1\n");
        assert!(fail.unwrap().contains("cut short"));
    }

    #[tokio::test]
    async fn a_unary_body_passes_through() {
        let b = RelayBody::new(frames(&["{}"], None), false);
        assert_eq!(read(b).await, ("{}".to_owned(), None));
    }
}
