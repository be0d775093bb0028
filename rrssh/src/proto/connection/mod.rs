//! One rrssh connection over any ordered, reliable byte stream: many calls in flight in both
//! directions, answered in any order, each with its own flow-control window.
//!
//! A [`Connection`] is both sides at once: it serves a [`Router`] to the peer (if given one) and
//! is a client ([`tower::Service`](tower_service::Service)) for calls to the peer.

mod body;
mod credit;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::AbortHandle;
use tokio_util::codec::FramedRead;
use tower_service::Service;

use self::body::{BodyMsg, RecvBody, Side};
use self::credit::Credit;
use super::codec::{Codec, DecodeError};
use super::frame::{self, FLAG_END, Frame, FrameType, Head, goaway};
use super::limits::Limits;
use crate::client::Error;
use crate::extract::Peer;
use crate::{ApiError, Body, Request, Response, Router};

/// Which side of the carrier this end is: the side that opened it numbers its calls odd, the
/// other even, so both can start calls without clashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Opened the carrier (odd call ids).
    Initiator,
    /// Accepted the carrier (even call ids).
    Acceptor,
}

/// How to run a connection.
#[derive(Clone)]
#[non_exhaustive]
pub struct ConnectionConfig {
    /// Which side this end is.
    pub role: Role,
    /// Limits (what we accept; the peer's HELLO says what it accepts).
    pub limits: Limits,
    /// The routes served to the peer; `None` answers every call 404.
    pub router: Option<Router>,
    /// The peer's authenticated identity, put into the extensions of every call it makes.
    pub peer: Option<Peer>,
    /// The service name announced in HELLO (reverse mode).
    pub service: Option<String>,
    /// How long to wait for the peer's HELLO.
    pub hello_timeout: Duration,
}

impl ConnectionConfig {
    /// A configuration for this role with default limits and nothing served.
    pub fn new(role: Role) -> Self {
        Self {
            role,
            limits: Limits::default(),
            router: None,
            peer: None,
            service: None,
            hello_timeout: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionConfig")
            .field("role", &self.role)
            .field("limits", &self.limits)
            .field("serves", &self.router.is_some())
            .field("peer", &self.peer)
            .field("service", &self.service)
            .finish()
    }
}

/// The HELLO payload (JSON).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Hello {
    /// Protocol version.
    pub version: u16,
    /// Largest frame the sender accepts.
    pub max_frame: u32,
    /// Initial per-call window the sender grants.
    pub window: u32,
    /// Most concurrent calls the sender accepts.
    pub max_calls: u32,
    /// Service name (reverse mode), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

struct OutCall {
    head: Option<oneshot::Sender<Result<Response, Error>>>,
    body: Option<mpsc::UnboundedSender<BodyMsg>>,
    /// Credit for the request body we send.
    credit: Arc<Credit>,
    pump: Option<AbortHandle>,
    /// Response bytes we still accept before granting more.
    recv_allowed: i64,
}

struct InCall {
    body: Option<mpsc::UnboundedSender<BodyMsg>>,
    /// Credit for the response body we send.
    credit: Arc<Credit>,
    task: Option<AbortHandle>,
    recv_allowed: i64,
}

#[derive(Default)]
struct Calls {
    outgoing: HashMap<u32, OutCall>,
    incoming: HashMap<u32, InCall>,
    closed: Option<String>,
    /// GOAWAY received: no new calls to the peer.
    draining: bool,
    /// GOAWAY sent: new calls from the peer are refused with 503.
    refusing: bool,
    /// Highest call id the peer has started.
    last_peer_call: u32,
}

struct Shared {
    tx: mpsc::UnboundedSender<Bytes>,
    calls: Mutex<Calls>,
    limits: Limits,
    peer_hello: Hello,
    next_id: AtomicU32,
    closed_tx: watch::Sender<Option<String>>,
    /// Set when the peer says GOAWAY, with its message.
    goaway_tx: watch::Sender<Option<String>>,
    /// Woken whenever a call from the peer finishes.
    incoming_done: Notify,
    /// Set when the writer has stopped.
    writer_done: watch::Sender<bool>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Calls> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, bytes: Bytes) {
        let _ = self.tx.send(bytes);
    }

    fn send_frame(&self, ty: FrameType, flags: u8, call: u32, payload: &[u8]) {
        let mut b = BytesMut::with_capacity(frame::HEADER_LEN + payload.len());
        frame::encode_parts(ty, flags, call, payload, &mut b);
        self.send(b.freeze());
    }

    /// Grants the peer `n` more bytes on a call whose body we are reading.
    fn grant_window(&self, call: u32, side: Side, n: u32) {
        let mut calls = self.lock();
        let allowed = match side {
            Side::Outgoing => calls.outgoing.get_mut(&call).map(|c| &mut c.recv_allowed),
            Side::Incoming => calls.incoming.get_mut(&call).map(|c| &mut c.recv_allowed),
        };
        if let Some(a) = allowed {
            *a += i64::from(n);
            drop(calls);
            self.send_frame(FrameType::Window, 0, call, &n.to_be_bytes());
        }
    }

    /// Abandons a call we made: tells the peer and forgets it.
    fn cancel_outgoing(&self, call: u32) {
        let removed = self.lock().outgoing.remove(&call);
        if let Some(c) = removed {
            c.credit.close();
            if let Some(p) = c.pump {
                p.abort();
            }
            self.send_frame(FrameType::Cancel, 0, call, &[]);
        }
    }

    fn finish_incoming(&self, call: u32) {
        let removed = self.lock().incoming.remove(&call);
        if let Some(c) = removed {
            c.credit.close();
            self.incoming_done.notify_waiters();
        }
    }

    fn close(&self, reason: String) {
        let (outgoing, incoming) = {
            let mut calls = self.lock();
            if calls.closed.is_some() {
                return;
            }
            calls.closed = Some(reason.clone());
            (
                std::mem::take(&mut calls.outgoing),
                std::mem::take(&mut calls.incoming),
            )
        };
        for (_, mut c) in outgoing {
            c.credit.close();
            if let Some(p) = c.pump.take() {
                p.abort();
            }
            if let Some(h) = c.head.take() {
                let _ = h.send(Err(Error::Unavailable(reason.clone())));
            }
            if let Some(b) = c.body.take() {
                let _ = b.send(BodyMsg::Lost(reason.clone()));
            }
        }
        for (_, c) in incoming {
            c.credit.close();
            if let Some(t) = c.task {
                t.abort();
            }
        }
        self.incoming_done.notify_waiters();
        let _ = self.closed_tx.send(Some(reason));
    }
}

/// A running connection; cloning gives another handle to it.
///
/// As a [`Service`] it sends calls to the peer. Dropping every handle does not close the
/// connection while the peer keeps it open (it may still be serving calls); use
/// [`close`](Self::close).
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("peer_hello", &self.shared.peer_hello)
            .finish_non_exhaustive()
    }
}

/// Why a connection could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The carrier failed or closed during the handshake.
    #[error("carrier closed during the handshake: {0}")]
    Io(String),
    /// The peer sent something other than a valid HELLO.
    #[error("bad HELLO from the peer: {0}")]
    BadHello(String),
    /// No common protocol version.
    #[error("the peer speaks protocol version {0}, this end speaks {v}", v = super::VERSION)]
    Version(u16),
    /// The peer did not say HELLO in time.
    #[error("the peer did not complete the handshake in time")]
    Timeout,
}

impl Connection {
    /// Starts a connection on a carrier: exchanges HELLO, then runs the reader and writer tasks.
    pub async fn start<IO>(io: IO, config: ConnectionConfig) -> Result<Connection, HandshakeError>
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, mut wr) = tokio::io::split(io);
        let hello = Hello {
            version: super::VERSION,
            max_frame: config.limits.max_frame,
            window: config.limits.initial_window,
            max_calls: config.limits.max_concurrent_calls,
            service: config.service.clone(),
        };
        let payload = serde_json::to_vec(&hello).unwrap_or_default();
        let mut buf = BytesMut::new();
        frame::encode_parts(FrameType::Hello, 0, 0, &payload, &mut buf);
        wr.write_all(&buf)
            .await
            .map_err(|e| HandshakeError::Io(e.to_string()))?;
        wr.flush()
            .await
            .map_err(|e| HandshakeError::Io(e.to_string()))?;

        let mut reader =
            FramedRead::with_capacity(rd, Codec::new(config.limits.max_frame), 8 * 1024);
        let first = tokio::time::timeout(config.hello_timeout, reader.next()).await;
        let peer_hello: Hello = match first {
            Err(_) => return Err(HandshakeError::Timeout),
            Ok(None) => return Err(HandshakeError::Io("closed before HELLO".into())),
            Ok(Some(Err(e))) => return Err(HandshakeError::BadHello(e.to_string())),
            Ok(Some(Ok(f))) if f.ty == FrameType::Hello => serde_json::from_slice(&f.payload)
                .map_err(|e| HandshakeError::BadHello(e.to_string()))?,
            Ok(Some(Ok(f))) => {
                return Err(HandshakeError::BadHello(format!(
                    "first frame is {:?}",
                    f.ty
                )));
            }
        };
        if peer_hello.version != super::VERSION {
            let mut buf = BytesMut::new();
            let msg = format!("unsupported protocol version {}", peer_hello.version);
            frame::encode_parts(
                FrameType::GoAway,
                0,
                0,
                &frame::encode_goaway(0, goaway::VERSION, &msg),
                &mut buf,
            );
            let _ = wr.write_all(&buf).await;
            return Err(HandshakeError::Version(peer_hello.version));
        }

        let (tx, rx) = mpsc::unbounded_channel();
        let (closed_tx, _) = watch::channel(None);
        let first_id = match config.role {
            Role::Initiator => 1,
            Role::Acceptor => 2,
        };
        let shared = Arc::new(Shared {
            tx,
            calls: Mutex::new(Calls::default()),
            limits: config.limits,
            peer_hello,
            next_id: AtomicU32::new(first_id),
            closed_tx,
            goaway_tx: watch::channel(None).0,
            incoming_done: Notify::new(),
            writer_done: watch::channel(false).0,
        });
        // Subscribe before spawning, so that a close before the tasks first run is seen.
        let (w_closed, r_closed) = (shared.closed_tx.subscribe(), shared.closed_tx.subscribe());
        let w_shared = shared.clone();
        tokio::spawn(async move {
            write_loop(wr, rx, w_shared.clone(), w_closed).await;
            w_shared.writer_done.send_replace(true);
        });
        tokio::spawn(read_loop(reader, shared.clone(), config, r_closed));
        Ok(Connection { shared })
    }

    /// What the peer said in its HELLO (its limits and announced service name).
    pub fn peer_hello(&self) -> &Hello {
        &self.shared.peer_hello
    }

    /// Whether the connection has closed, and why.
    pub fn closed_reason(&self) -> Option<String> {
        self.shared.lock().closed.clone()
    }

    /// Waits until the connection closes; returns why.
    pub fn closed(&self) -> impl Future<Output = String> + Send + 'static {
        let mut rx = self.shared.closed_tx.subscribe();
        async move {
            loop {
                if let Some(r) = rx.borrow_and_update().clone() {
                    return r;
                }
                if rx.changed().await.is_err() {
                    return "connection dropped".to_owned();
                }
            }
        }
    }

    /// Closes the connection: says GOAWAY, fails calls in flight with
    /// [`Error::Unavailable`], and stops serving.
    pub fn close(&self, reason: &str) {
        self.close_with(goaway::NORMAL, reason);
    }

    /// Closes the connection with a `GOAWAY` of this code (see [`goaway`]) and reason, which
    /// the peer reports as why the connection ended.
    pub fn close_with(&self, code: u16, reason: &str) {
        let last = self.shared.lock().last_peer_call;
        self.shared.send_frame(
            FrameType::GoAway,
            0,
            0,
            &frame::encode_goaway(last, code, reason),
        );
        self.shared.close(reason.to_owned());
    }

    /// Starts a graceful close: says GOAWAY (code 0, with `reason`), after which new calls from
    /// the peer are refused with 503 while the calls already started run to the end. Calls to
    /// the peer are not affected. Follow with [`drained`](Self::drained) and
    /// [`close`](Self::close).
    pub fn go_away(&self, reason: &str) {
        let last = {
            let mut calls = self.shared.lock();
            if calls.refusing || calls.closed.is_some() {
                return;
            }
            calls.refusing = true;
            calls.last_peer_call
        };
        self.shared.send_frame(
            FrameType::GoAway,
            0,
            0,
            &frame::encode_goaway(last, goaway::NORMAL, reason),
        );
    }

    /// Waits until no call is in flight in either direction (or the connection closed).
    pub async fn drained(&self) {
        loop {
            let notified = self.shared.incoming_done.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            {
                let calls = self.shared.lock();
                if (calls.incoming.is_empty() && calls.outgoing.is_empty())
                    || calls.closed.is_some()
                {
                    return;
                }
            }
            // Calls to the peer end in several places; a short tick covers them.
            let _ = tokio::time::timeout(Duration::from_millis(10), notified).await;
        }
    }

    /// Waits until the connection is closed and everything queued before the close (such as a
    /// final `GOAWAY`) has been handed to the carrier.
    pub async fn flushed(&self) {
        let mut rx = self.shared.writer_done.subscribe();
        let _ = rx.wait_for(|done| *done).await;
    }

    /// Waits until the peer says GOAWAY (it takes no new calls); returns its message. Never
    /// resolves if the connection closes without one.
    pub fn going_away(&self) -> impl Future<Output = String> + Send + 'static {
        let mut rx = self.shared.goaway_tx.subscribe();
        async move {
            loop {
                if let Some(r) = rx.borrow_and_update().clone() {
                    return r;
                }
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }

    /// Number of calls in flight (both directions).
    pub fn calls_in_flight(&self) -> usize {
        let c = self.shared.lock();
        c.outgoing.len() + c.incoming.len()
    }

    /// Sends a call's head (and a small body); returns its id and where its response arrives.
    #[allow(clippy::type_complexity)]
    fn start_call(
        &self,
        req: Request,
    ) -> Result<(u32, oneshot::Receiver<Result<Response, Error>>), Error> {
        let shared = &self.shared;
        let (parts, body) = req.into_parts();
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        if target.len() > u16::MAX as usize {
            return Err(Error::Encode(
                "request target is longer than 65535 bytes".into(),
            ));
        }
        let id = shared.next_id.fetch_add(2, Ordering::Relaxed);
        let (head_tx, head_rx) = oneshot::channel();
        let credit = Arc::new(Credit::new(shared.peer_hello.window));
        let full = body.as_full().map(Bytes::copy_from_slice);
        let mut buf = BytesMut::new();
        let mut head = BytesMut::new();
        frame::encode_request(parts.method.as_str(), target, &parts.headers, &mut head);
        let max_chunk = self.max_chunk();
        let inline = match &full {
            Some(b) if b.is_empty() => {
                frame::encode_parts(FrameType::Request, FLAG_END, id, &head, &mut buf);
                true
            }
            Some(b) if b.len() <= max_chunk && credit.try_take_all(b.len()) => {
                frame::encode_parts(FrameType::Request, 0, id, &head, &mut buf);
                frame::encode_parts(FrameType::Data, FLAG_END, id, b, &mut buf);
                true
            }
            _ => {
                frame::encode_parts(FrameType::Request, 0, id, &head, &mut buf);
                false
            }
        };
        {
            let mut calls = shared.lock();
            if let Some(reason) = &calls.closed {
                return Err(Error::Unavailable(reason.clone()));
            }
            if calls.draining {
                let why = shared.goaway_tx.borrow().clone().unwrap_or_default();
                return Err(Error::Unavailable(format!("the peer is going away: {why}")));
            }
            calls.outgoing.insert(
                id,
                OutCall {
                    head: Some(head_tx),
                    body: None,
                    credit: credit.clone(),
                    pump: None,
                    recv_allowed: i64::from(shared.limits.initial_window),
                },
            );
            // Queue under the lock so that a concurrent close cannot strand the call.
            shared.send(buf.freeze());
        }
        if !inline {
            let pump = tokio::spawn(pump_body(shared.clone(), id, body, credit, max_chunk));
            if let Some(c) = shared.lock().outgoing.get_mut(&id) {
                c.pump = Some(pump.abort_handle());
            }
        }
        Ok((id, head_rx))
    }

    fn max_chunk(&self) -> usize {
        let peer_max = self
            .shared
            .peer_hello
            .max_frame
            .saturating_sub(frame::HEADER_LEN as u32);
        self.shared.limits.max_data_chunk.min(peer_max).max(1) as usize
    }
}

/// Sends a body as DATA frames within the call's credit, then ends it.
async fn pump_body(
    shared: Arc<Shared>,
    id: u32,
    mut body: Body,
    credit: Arc<Credit>,
    max_chunk: usize,
) {
    loop {
        match body.frame().await {
            None => {
                shared.send_frame(FrameType::Data, FLAG_END, id, &[]);
                return;
            }
            Some(Ok(f)) => match crate::body::trailers_of(f) {
                Ok(mut data) => {
                    while !data.is_empty() {
                        let Some(n) = credit.take(data.len().min(max_chunk)).await else {
                            return;
                        };
                        let chunk = data.split_to(n);
                        shared.send_frame(FrameType::Data, 0, id, &chunk);
                    }
                }
                Err(trailers) => {
                    let mut b = BytesMut::new();
                    frame::encode_headers(&trailers, &mut b);
                    shared.send_frame(FrameType::End, FLAG_END, id, &b);
                    return;
                }
            },
            Some(Err(e)) => {
                let msg = format!("body failed: {e}");
                shared.send_frame(
                    FrameType::Reset,
                    FLAG_END,
                    id,
                    &frame::encode_reset(500, &msg),
                );
                return;
            }
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin + Send + 'static>(
    mut wr: W,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    shared: Arc<Shared>,
    mut closed: watch::Receiver<Option<String>>,
) {
    const BATCH: usize = 256 * 1024;
    let mut buf = BytesMut::with_capacity(4 * 1024);
    loop {
        let first = tokio::select! {
            biased;
            m = rx.recv() => m,
            _ = closed.changed() => {
                // Drain what is queued (e.g. a GOAWAY) and stop.
                while let Ok(m) = rx.try_recv() {
                    buf.extend_from_slice(&m);
                }
                let _ = wr.write_all(&buf).await;
                let _ = wr.flush().await;
                let _ = wr.shutdown().await;
                return;
            }
        };
        let Some(first) = first else { return };
        buf.extend_from_slice(&first);
        while buf.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => buf.extend_from_slice(&m),
                Err(_) => break,
            }
        }
        if let Err(e) = wr.write_all(&buf).await {
            shared.close(format!("write failed: {e}"));
            return;
        }
        buf.clear();
        if rx.is_empty()
            && let Err(e) = wr.flush().await
        {
            shared.close(format!("flush failed: {e}"));
            return;
        }
    }
}

async fn read_loop<R>(
    mut reader: FramedRead<R, Codec>,
    shared: Arc<Shared>,
    config: ConnectionConfig,
    mut closed: watch::Receiver<Option<String>>,
) where
    R: AsyncRead + Unpin + Send + 'static,
{
    let reason = loop {
        let next = tokio::select! {
            biased;
            _ = closed.changed() => return,
            n = reader.next() => n,
        };
        match next {
            None => match shared.goaway_tx.borrow().clone() {
                Some(why) => break format!("the peer went away: {why}"),
                None => break "the peer closed the connection".to_owned(),
            },
            Some(Err(DecodeError::Io(e))) => break format!("carrier failed: {e}"),
            Some(Err(e)) => {
                let code = match e {
                    DecodeError::TooLarge { .. } => goaway::FRAME_TOO_LARGE,
                    _ => goaway::PROTOCOL_ERROR,
                };
                tracing::warn!(error = %e, "protocol violation, closing");
                let last = shared.next_id.load(Ordering::Relaxed);
                shared.send_frame(
                    FrameType::GoAway,
                    0,
                    0,
                    &frame::encode_goaway(last, code, &e.to_string()),
                );
                break format!("protocol violation by the peer: {e}");
            }
            Some(Ok(f)) => {
                if let Err(e) = handle_frame(&shared, &config, f) {
                    tracing::warn!(error = %e, "protocol violation, closing");
                    let last = shared.next_id.load(Ordering::Relaxed);
                    shared.send_frame(
                        FrameType::GoAway,
                        0,
                        0,
                        &frame::encode_goaway(last, goaway::PROTOCOL_ERROR, &e),
                    );
                    break format!("protocol violation by the peer: {e}");
                }
            }
        }
    };
    shared.close(reason);
}

fn is_peer_id(role: Role, id: u32) -> bool {
    match role {
        Role::Initiator => id.is_multiple_of(2) && id != 0,
        Role::Acceptor => !id.is_multiple_of(2),
    }
}

/// Handles one frame; `Err` is a protocol violation that closes the connection.
fn handle_frame(shared: &Arc<Shared>, config: &ConnectionConfig, f: Frame) -> Result<(), String> {
    let id = f.call;
    match f.ty {
        FrameType::Hello => Err("second HELLO".into()),
        FrameType::Ping => {
            shared.send_frame(FrameType::Pong, 0, 0, &f.payload);
            Ok(())
        }
        FrameType::Pong => Ok(()),
        FrameType::GoAway => {
            let (_, code, msg) = frame::decode_goaway(&f.payload).map_err(|e| e.to_string())?;
            tracing::debug!(code, %msg, "peer is going away");
            shared.lock().draining = true;
            shared.goaway_tx.send_replace(Some(if msg.is_empty() {
                "the peer is going away".to_owned()
            } else {
                msg
            }));
            Ok(())
        }
        FrameType::Request => {
            if !is_peer_id(config.role, id) {
                return Err(format!("REQUEST with call id {id} of the wrong parity"));
            }
            on_request(shared, config, f);
            Ok(())
        }
        FrameType::Response => {
            let head = Head::decode_response(&f.payload).map_err(|e| e.to_string())?;
            let Head::Response { status, headers } = head else {
                return Ok(());
            };
            let mut calls = shared.lock();
            let Some(call) = calls.outgoing.get_mut(&id) else {
                return Ok(());
            };
            let Some(head_tx) = call.head.take() else {
                return Err(format!("second RESPONSE on call {id}"));
            };
            let body = if f.is_end() {
                calls.outgoing.remove(&id);
                Body::empty()
            } else {
                let (tx, rx) = mpsc::unbounded_channel();
                call.body = Some(tx);
                Body::new(RecvBody {
                    rx,
                    shared: shared.clone(),
                    call: id,
                    side: Side::Outgoing,
                    unacked: 0,
                    done: false,
                })
            };
            drop(calls);
            let mut res = Response::new(body);
            *res.status_mut() =
                StatusCode::from_u16(status).map_err(|_| format!("bad status {status}"))?;
            *res.headers_mut() = headers;
            if head_tx.send(Ok(res)).is_err() {
                // The caller is gone: its guard already sent CANCEL or will.
            }
            Ok(())
        }
        FrameType::Data | FrameType::End => {
            let end = f.is_end() || f.ty == FrameType::End;
            let msg_data = if f.ty == FrameType::End {
                let trailers =
                    frame::decode_headers(&mut &f.payload[..]).map_err(|e| e.to_string())?;
                None.or(Some(BodyMsg::End(if trailers.is_empty() {
                    None
                } else {
                    Some(trailers)
                })))
            } else {
                None
            };
            let len = if f.ty == FrameType::Data {
                f.payload.len()
            } else {
                0
            };
            let mut calls = shared.lock();
            let (body, allowed, finished) = if is_peer_id(config.role, id) {
                match calls.incoming.get_mut(&id) {
                    Some(c) => (&mut c.body, &mut c.recv_allowed, false),
                    None => return Ok(()),
                }
            } else {
                match calls.outgoing.get_mut(&id) {
                    Some(c) if c.head.is_none() => (&mut c.body, &mut c.recv_allowed, end),
                    Some(_) => return Err(format!("DATA before RESPONSE on call {id}")),
                    None => return Ok(()),
                }
            };
            *allowed -= len as i64;
            if *allowed < 0 {
                return Err(format!("call {id} sent past its window"));
            }
            if let Some(tx) = body.as_ref() {
                if len > 0 {
                    let _ = tx.send(BodyMsg::Data(f.payload.clone()));
                }
                if end {
                    let _ = tx.send(msg_data.unwrap_or(BodyMsg::End(None)));
                }
            }
            if end {
                *body = None;
            }
            if finished {
                calls.outgoing.remove(&id);
            }
            Ok(())
        }
        FrameType::Window => {
            let n = frame::decode_window(&f.payload).map_err(|e| e.to_string())?;
            let calls = shared.lock();
            let credit = if is_peer_id(config.role, id) {
                calls.incoming.get(&id).map(|c| c.credit.clone())
            } else {
                calls.outgoing.get(&id).map(|c| c.credit.clone())
            };
            drop(calls);
            if let Some(c) = credit {
                c.grant(n);
            }
            Ok(())
        }
        FrameType::Cancel => {
            let removed = shared.lock().incoming.remove(&id);
            if let Some(c) = removed {
                c.credit.close();
                if let Some(t) = c.task {
                    t.abort();
                }
                shared.incoming_done.notify_waiters();
            }
            Ok(())
        }
        FrameType::Reset => {
            let (status, message) = frame::decode_reset(&f.payload).map_err(|e| e.to_string())?;
            let mut calls = shared.lock();
            if is_peer_id(config.role, id) {
                // The peer could not send its request body: the call is over.
                if let Some(c) = calls.incoming.get_mut(&id)
                    && let Some(tx) = c.body.take()
                {
                    let _ = tx.send(BodyMsg::Error(message));
                }
                return Ok(());
            }
            if let Some(mut c) = calls.outgoing.remove(&id) {
                c.credit.close();
                if let Some(p) = c.pump.take() {
                    p.abort();
                }
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                if let Some(h) = c.head.take() {
                    let _ = h.send(Err(Error::Status {
                        status,
                        body: ApiError::new(status, message),
                    }));
                } else if let Some(b) = c.body.take() {
                    let _ = b.send(BodyMsg::Error(format!(
                        "call reset by the peer: {status} {message}"
                    )));
                }
            }
            Ok(())
        }
    }
}

fn reset(shared: &Shared, id: u32, status: StatusCode, message: &str) {
    shared.send_frame(
        FrameType::Reset,
        FLAG_END,
        id,
        &frame::encode_reset(status.as_u16(), message),
    );
}

fn on_request(shared: &Arc<Shared>, config: &ConnectionConfig, f: Frame) {
    let id = f.call;
    if f.payload.len() > config.limits.max_head as usize {
        return reset(
            shared,
            id,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request head is too large",
        );
    }
    let head = match Head::decode_request(&f.payload) {
        Ok(h) => h,
        Err(e) => return reset(shared, id, StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let Head::Request {
        method,
        target,
        headers,
    } = head
    else {
        return;
    };
    let Some(method) = crate::method::parse(&method) else {
        return reset(shared, id, StatusCode::BAD_REQUEST, "invalid method");
    };
    let uri: http::Uri = match target.parse() {
        Ok(u) => u,
        Err(e) => {
            return reset(
                shared,
                id,
                StatusCode::BAD_REQUEST,
                &format!("invalid target: {e}"),
            );
        }
    };
    let mut calls = shared.lock();
    calls.last_peer_call = calls.last_peer_call.max(id);
    if calls.refusing {
        drop(calls);
        return reset(
            shared,
            id,
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down (GOAWAY sent)",
        );
    }
    if calls.incoming.len() >= config.limits.max_concurrent_calls as usize {
        drop(calls);
        tracing::warn!(
            limit = config.limits.max_concurrent_calls,
            "too many concurrent calls"
        );
        let msg = format!(
            "too many concurrent calls on this connection (limit {})",
            config.limits.max_concurrent_calls
        );
        return reset(shared, id, StatusCode::TOO_MANY_REQUESTS, &msg);
    }
    if calls.incoming.contains_key(&id) {
        return;
    }
    let (body, body_tx) = if f.is_end() {
        (Body::empty(), None)
    } else {
        let (tx, rx) = mpsc::unbounded_channel();
        let b = RecvBody {
            rx,
            shared: shared.clone(),
            call: id,
            side: Side::Incoming,
            unacked: 0,
            done: false,
        };
        (Body::new(b), Some(tx))
    };
    let credit = Arc::new(Credit::new(shared.peer_hello.window));
    let mut req = Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    if let Some(p) = &config.peer {
        req.extensions_mut().insert(p.clone());
    }
    calls.incoming.insert(
        id,
        InCall {
            body: body_tx,
            credit: credit.clone(),
            task: None,
            recv_allowed: i64::from(config.limits.initial_window),
        },
    );
    drop(calls);
    let max_chunk = {
        let peer_max = shared
            .peer_hello
            .max_frame
            .saturating_sub(frame::HEADER_LEN as u32);
        config.limits.max_data_chunk.min(peer_max).max(1) as usize
    };
    let router = config.router.clone();
    let task_shared = shared.clone();
    let task = tokio::spawn(async move {
        let serve = async {
            let res = match router {
                Some(mut r) => match r.call(req).await {
                    Ok(res) => res,
                    Err(never) => match never {},
                },
                None => crate::IntoResponse::into_response(ApiError::not_found(
                    "this peer serves no routes",
                )),
            };
            respond(&task_shared, id, res, credit, max_chunk).await;
        };
        // A panicking handler (or response body) fails its own call with a 500, nothing else.
        if futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(serve))
            .await
            .is_err()
        {
            tracing::error!(call = id, "handler panicked");
            reset(
                &task_shared,
                id,
                StatusCode::INTERNAL_SERVER_ERROR,
                "the handler panicked",
            );
        }
        task_shared.finish_incoming(id);
    });
    if let Some(c) = shared.lock().incoming.get_mut(&id) {
        c.task = Some(task.abort_handle());
    }
}

/// Sends a response: head and small bodies in one write, larger bodies within the window.
async fn respond(
    shared: &Arc<Shared>,
    id: u32,
    res: Response,
    credit: Arc<Credit>,
    max_chunk: usize,
) {
    let (parts, body) = res.into_parts();
    let mut head = BytesMut::new();
    Head::Response {
        status: parts.status.as_u16(),
        headers: parts.headers,
    }
    .encode(&mut head);
    let mut buf = BytesMut::new();
    match body.as_full() {
        Some([]) => {
            frame::encode_parts(FrameType::Response, FLAG_END, id, &head, &mut buf);
            shared.send(buf.freeze());
        }
        Some(b) if b.len() <= max_chunk && credit.try_take_all(b.len()) => {
            frame::encode_parts(FrameType::Response, 0, id, &head, &mut buf);
            frame::encode_parts(FrameType::Data, FLAG_END, id, b, &mut buf);
            shared.send(buf.freeze());
        }
        _ => {
            frame::encode_parts(FrameType::Response, 0, id, &head, &mut buf);
            shared.send(buf.freeze());
            pump_body(shared.clone(), id, body, credit, max_chunk).await;
        }
    }
}

/// The future of a call on a [`Connection`].
pub struct ResponseFuture {
    state: FutState,
}

enum FutState {
    Failed(Option<Error>),
    Waiting {
        rx: oneshot::Receiver<Result<Response, Error>>,
        guard: CancelGuard,
        deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    },
}

struct CancelGuard {
    shared: Arc<Shared>,
    id: u32,
    armed: bool,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if self.armed {
            self.shared.cancel_outgoing(self.id);
        }
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            FutState::Failed(e) => Poll::Ready(Err(e
                .take()
                .unwrap_or(Error::Unavailable("polled after completion".into())))),
            FutState::Waiting {
                rx,
                guard,
                deadline,
            } => {
                if let Poll::Ready(r) = Pin::new(rx).poll(cx) {
                    guard.armed = false;
                    return Poll::Ready(match r {
                        Ok(r) => r,
                        Err(_) => Err(Error::Unavailable("connection closed".into())),
                    });
                }
                if let Some(d) = deadline
                    && d.as_mut().poll(cx).is_ready()
                {
                    // The guard cancels the call when the future is dropped.
                    return Poll::Ready(Err(Error::Timeout));
                }
                Poll::Pending
            }
        }
    }
}

impl Service<Request> for Connection {
    type Response = Response;
    type Error = Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> ResponseFuture {
        // A caller's deadline also bounds the wait here (plus a little slack for the 504).
        let deadline = req
            .headers()
            .get(crate::extract::TIMEOUT_HEADER)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .map(|ms| {
                Box::pin(tokio::time::sleep(
                    Duration::from_millis(ms) + Duration::from_millis(50),
                ))
            });
        match self.start_call(req) {
            Ok((id, rx)) => ResponseFuture {
                state: FutState::Waiting {
                    rx,
                    guard: CancelGuard {
                        shared: self.shared.clone(),
                        id,
                        armed: true,
                    },
                    deadline,
                },
            },
            Err(e) => ResponseFuture {
                state: FutState::Failed(Some(e)),
            },
        }
    }
}
