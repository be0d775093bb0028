//! The receiving side of a call's body: chunks arrive from the connection's reader; consuming
//! them grants the sender more window.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::Frame;
use tokio::sync::mpsc;

use super::Shared;
use crate::BoxError;

/// What the reader passes to a body.
#[derive(Debug)]
pub(super) enum BodyMsg {
    Data(Bytes),
    /// The body ended (with trailers if any).
    End(Option<HeaderMap>),
    /// The body failed (RESET).
    Error(String),
    /// The connection was lost.
    Lost(String),
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
    pub(super) rx: mpsc::UnboundedReceiver<BodyMsg>,
    pub(super) shared: Arc<Shared>,
    pub(super) call: u32,
    pub(super) side: Side,
    pub(super) unacked: u32,
    pub(super) done: bool,
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
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(BodyMsg::Data(b))) => {
                self.unacked = self.unacked.saturating_add(b.len() as u32);
                let threshold = self.shared.limits.initial_window / 4;
                if self.unacked >= threshold.max(1) {
                    let n = std::mem::take(&mut self.unacked);
                    self.shared.grant_window(self.call, self.side, n);
                }
                Poll::Ready(Some(Ok(Frame::data(b))))
            }
            Poll::Ready(Some(BodyMsg::End(trailers))) => {
                self.done = true;
                Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))))
            }
            Poll::Ready(Some(BodyMsg::Error(e))) => {
                self.done = true;
                Poll::Ready(Some(Err(Box::new(BodyError(e)))))
            }
            Poll::Ready(Some(BodyMsg::Lost(reason))) => {
                self.done = true;
                Poll::Ready(Some(Err(Box::new(crate::client::Error::Unavailable(
                    format!("connection lost: {reason}"),
                )))))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(Some(Err(Box::new(crate::client::Error::Unavailable(
                    "connection lost".into(),
                )))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

impl Drop for RecvBody {
    fn drop(&mut self) {
        if !self.done && self.side == Side::Outgoing {
            // The caller stopped reading before the end: cancel the call.
            self.shared.cancel_outgoing(self.call);
        }
    }
}
