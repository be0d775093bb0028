//! The SSH byte stream over WebSocket binary messages: each write becomes one message (of at
//! most [`MAX_WRITE`] bytes), each binary message read is handed on byte for byte. Pings are
//! answered by the WebSocket layer; a text message is a protocol error; a close is the end of
//! the stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The largest message written (russh writes SSH packets of at most 256 KiB, most far less).
pub(crate) const MAX_WRITE: usize = 64 * 1024;

/// The largest message or frame accepted from a peer: OpenSSH's largest SSH packet (256 KiB).
/// Before logging in, a connection can make the server hold one such message: 25 MiB for the
/// default 100 unauthenticated connections.
pub(crate) const MAX_MESSAGE: usize = 256 * 1024;

/// A received WebSocket message, as the byte stream sees it.
pub(crate) enum Incoming {
    Data(Bytes),
    /// Ping, pong (answered below), or a raw frame.
    Control,
    Text,
    Close,
}

/// A WebSocket library's message type (tungstenite's for the client, axum's for the server).
pub(crate) trait Message: Sized {
    fn binary(data: Bytes) -> Self;
    fn incoming(self) -> Incoming;
}

impl Message for tokio_tungstenite::tungstenite::Message {
    fn binary(data: Bytes) -> Self {
        Self::Binary(data)
    }

    fn incoming(self) -> Incoming {
        match self {
            Self::Binary(b) => Incoming::Data(b),
            Self::Text(_) => Incoming::Text,
            Self::Close(_) => Incoming::Close,
            Self::Ping(_) | Self::Pong(_) | Self::Frame(_) => Incoming::Control,
        }
    }
}

impl Message for axum::extract::ws::Message {
    fn binary(data: Bytes) -> Self {
        Self::Binary(data)
    }

    fn incoming(self) -> Incoming {
        match self {
            Self::Binary(b) => Incoming::Data(b),
            Self::Text(_) => Incoming::Text,
            Self::Close(_) => Incoming::Close,
            Self::Ping(_) | Self::Pong(_) => Incoming::Control,
        }
    }
}

/// A WebSocket (`W`, of messages `M`) as a byte stream.
pub(crate) struct WsIo<W, M> {
    ws: W,
    /// What is left of the last message read.
    unread: Bytes,
    ended: bool,
    messages: std::marker::PhantomData<fn() -> M>,
}

impl<W, M> WsIo<W, M> {
    pub(crate) fn new(ws: W) -> Self {
        Self {
            ws,
            unread: Bytes::new(),
            ended: false,
            messages: std::marker::PhantomData,
        }
    }
}

fn broken(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, format!("WebSocket: {e}"))
}

impl<W, M, E> AsyncRead for WsIo<W, M>
where
    W: Stream<Item = Result<M, E>> + Unpin,
    M: Message,
    E: std::fmt::Display,
{
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.unread.is_empty() {
                let n = this.unread.len().min(buf.remaining());
                buf.put_slice(&this.unread[..n]);
                this.unread.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.ended {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                Some(Ok(m)) => match m.incoming() {
                    Incoming::Data(b) => this.unread = b,
                    Incoming::Control => {}
                    Incoming::Text => {
                        this.ended = true;
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "WebSocket: a text message where SSH travels in binary ones",
                        )));
                    }
                    Incoming::Close => this.ended = true,
                },
                Some(Err(e)) => {
                    this.ended = true;
                    return Poll::Ready(Err(broken(e)));
                }
                None => this.ended = true,
            }
        }
    }
}

impl<W, M> AsyncWrite for WsIo<W, M>
where
    W: Sink<M> + Unpin,
    W::Error: std::fmt::Display,
    M: Message,
{
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let ws = &mut self.ws;
        ready!(Pin::new(&mut *ws).poll_ready(cx)).map_err(broken)?;
        let n = buf.len().min(MAX_WRITE);
        Pin::new(ws)
            .start_send(M::binary(Bytes::copy_from_slice(&buf[..n])))
            .map_err(broken)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(broken)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_close(cx).map_err(broken)
    }
}
