//! One connection's protocol state, without I/O: bytes in, frames out, events up.
//!
//! [`Conn`] follows the shape of `quinn-proto`'s and `h2`'s protocol cores. Its methods fall
//! into four groups:
//!
//! - **input**: [`handle_input`](Conn::handle_input) takes whole frames off a read buffer,
//!   checks every rule of `PROTOCOL.md` a receiver must check, answers what the protocol itself
//!   answers (`PONG`, `RESET` 429/431/400/503, `WINDOW` grants, `GOAWAY` on a violation) and
//!   queues [`Event`]s; [`handle_eof`](Conn::handle_eof) and
//!   [`handle_hello_timeout`](Conn::handle_hello_timeout) report the carrier's end and a
//!   silent peer;
//! - **commands** from the application: [`start_request`](Conn::start_request),
//!   [`send_response`](Conn::send_response), [`send_data`](Conn::send_data),
//!   [`send_trailers`](Conn::send_trailers), [`send_reset`](Conn::send_reset),
//!   [`cancel`](Conn::cancel), [`consume`](Conn::consume), [`go_away`](Conn::go_away),
//!   [`close`](Conn::close);
//! - **output**: [`poll_event`](Conn::poll_event) and [`take_output`](Conn::take_output) (the
//!   bytes to write to the carrier, already framed);
//! - **getters**: [`peer_hello`](Conn::peer_hello), [`send_capacity`](Conn::send_capacity),
//!   [`wants_input`](Conn::wants_input), ….
//!
//! Memory is bounded whatever the peer does: body bytes by the windows, the output by
//! [`OUTPUT_HIGH`] (input stops being processed while the peer does not read what it made us
//! write), answers to `PING` by one outstanding `PONG`.

mod calls;
mod event;
mod flow;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;

use self::calls::{Call, Calls};
pub use self::event::{Event, SendError};
use self::flow::{RecvWindow, SendWindow};
use super::codec::{Codec, DecodeError};
use super::frame::{self, FLAG_END, Frame, FrameType, Head, goaway};
use super::hello::{Hello, HelloError};
use super::limits::Limits;

/// Which side of the carrier this end is: the side that opened it numbers its calls odd, the
/// other even, so both can start calls without clashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Opened the carrier (odd call ids).
    Initiator,
    /// Accepted the carrier (even call ids).
    Acceptor,
}

/// Output size under which the application may queue more body bytes
/// ([`Conn::can_send_data`]).
pub const OUTPUT_LOW: usize = 256 * 1024;

/// Output size at which input stops being processed until the carrier takes the output: a
/// peer that does not read cannot make us queue more. It is well above what body bytes and
/// heads can reach ([`OUTPUT_LOW`] plus one chunk), so two peers streaming to each other never
/// both stop reading.
pub const OUTPUT_HIGH: usize = OUTPUT_LOW + 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Handshake,
    Open,
    Closed(String),
}

/// The protocol state of one connection (see the [module docs](self)).
#[derive(Debug)]
pub struct Conn {
    role: Role,
    limits: Limits,
    codec: Codec,
    phase: Phase,
    peer: Option<Hello>,
    calls: Calls,
    next_id: u32,
    /// Highest call id the peer started (ids must increase).
    last_peer_id: u32,
    /// Connection window for what we send (the peer's `conn_window`).
    conn_send: SendWindow,
    /// Connection window for what we receive.
    conn_recv: RecvWindow,
    /// Body bytes received and not yet consumed, over all calls.
    buffered: u64,
    out: BytesMut,
    events: VecDeque<Event>,
    /// A PONG is in the output and not yet taken.
    pong_pending: bool,
    /// We sent GOAWAY: new calls from the peer are refused with 503.
    refusing: bool,
    /// The peer sent GOAWAY: its latest message.
    peer_going_away: Option<String>,
}

impl Conn {
    /// A connection in the handshake; our `HELLO` is already in the output.
    pub fn new(role: Role, limits: Limits, service: Option<String>) -> Self {
        let mut conn = Self {
            role,
            limits,
            codec: Codec::new(limits.max_frame),
            phase: Phase::Handshake,
            peer: None,
            calls: Calls::default(),
            next_id: match role {
                Role::Initiator => 1,
                Role::Acceptor => 2,
            },
            last_peer_id: 0,
            conn_send: SendWindow::unlimited(),
            conn_recv: RecvWindow::new(limits.connection_window),
            buffered: 0,
            out: BytesMut::new(),
            events: VecDeque::new(),
            pong_pending: false,
            refusing: false,
            peer_going_away: None,
        };
        let hello = serde_json::to_vec(&Hello::new(&limits, service)).unwrap_or_default();
        conn.push_frame(FrameType::Hello, 0, 0, &hello);
        conn
    }

    // ---- getters ----

    /// The peer's HELLO, once the handshake is done.
    pub fn peer_hello(&self) -> Option<&Hello> {
        self.peer.as_ref()
    }

    /// The handshake is done and the connection not closed.
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Why the connection closed, if it did.
    pub fn closed_reason(&self) -> Option<&str> {
        match &self.phase {
            Phase::Closed(r) => Some(r),
            _ => None,
        }
    }

    /// The peer's latest `GOAWAY` message, if it sent one.
    pub fn peer_going_away(&self) -> Option<&str> {
        self.peer_going_away.as_deref()
    }

    /// Calls in flight, in both directions.
    pub fn calls_in_flight(&self) -> usize {
        self.calls.len()
    }

    /// Body bytes received and not yet consumed by the application, over all calls.
    pub fn buffered(&self) -> u64 {
        self.buffered
    }

    /// Bytes of output not yet taken.
    pub fn pending_output(&self) -> usize {
        self.out.len()
    }

    /// Whether [`handle_input`](Self::handle_input) would process more frames now. It will not
    /// while the output is over [`OUTPUT_HIGH`] or a `PONG` waits, nor, for a peer that does
    /// not know connection windows, while more than the connection window is buffered.
    pub fn wants_input(&self) -> bool {
        if matches!(self.phase, Phase::Closed(_)) {
            return false;
        }
        if self.out.len() >= OUTPUT_HIGH || self.pong_pending {
            return false;
        }
        let legacy = self.peer.as_ref().is_some_and(|h| h.conn_window.is_none());
        !(legacy && self.buffered >= u64::from(self.limits.connection_window))
    }

    /// Whether the application may queue body bytes now (the output is under [`OUTPUT_LOW`]).
    pub fn can_send_data(&self) -> bool {
        self.out.len() < OUTPUT_LOW
    }

    /// How many body bytes a call may send now: the smallest of its window, the connection
    /// window and the largest DATA chunk. 0 when it must wait for [`Event::Capacity`] or
    /// [`Event::ConnectionCapacity`].
    pub fn send_capacity(&self, call: u32) -> usize {
        match self.calls.get(call) {
            Some(c) if c.send_open && c.head_sent => c
                .send
                .available()
                .min(self.conn_send.available())
                .min(self.max_chunk()),
            _ => 0,
        }
    }

    /// Largest DATA payload to send in one frame.
    pub fn max_chunk(&self) -> usize {
        let peer_max = self
            .peer
            .as_ref()
            .map_or(self.limits.max_frame, |h| h.max_frame)
            .saturating_sub(frame::HEADER_LEN as u32);
        self.limits.max_data_chunk.min(peer_max).max(1) as usize
    }

    /// Whether the call is in the table (not yet over).
    pub fn is_call_open(&self, call: u32) -> bool {
        self.calls.contains(call)
    }

    // ---- output ----

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Everything framed so far, to write to the carrier in order.
    pub fn take_output(&mut self) -> Option<Bytes> {
        self.pong_pending = false;
        if self.out.is_empty() {
            None
        } else {
            Some(self.out.split().freeze())
        }
    }

    fn push_frame(&mut self, ty: FrameType, flags: u8, call: u32, payload: &[u8]) {
        frame::encode_parts(ty, flags, call, payload, &mut self.out);
    }

    // ---- input ----

    /// Takes whole frames off `buf` and handles them, as long as
    /// [`wants_input`](Self::wants_input); a partial frame stays in `buf`. A violation queues
    /// `GOAWAY`, closes the connection and reports [`Event::Closed`]. It also returns right
    /// after the peer's HELLO, so the application can get ready before calls arrive.
    pub fn handle_input(&mut self, buf: &mut BytesMut) {
        while self.wants_input() {
            match self.codec.decode(buf) {
                Ok(None) => return,
                Ok(Some(f)) => {
                    let handshake = self.phase == Phase::Handshake;
                    if let Err((code, why)) = self.on_frame(f) {
                        self.violation(code, why);
                    } else if handshake {
                        return;
                    }
                }
                Err(e) => {
                    let code = match e {
                        DecodeError::TooLarge { .. } => goaway::FRAME_TOO_LARGE,
                        _ => goaway::PROTOCOL_ERROR,
                    };
                    self.violation(code, e.to_string());
                }
            }
        }
    }

    /// The carrier ended (end of file or an error).
    pub fn handle_eof(&mut self, why: Option<&str>) {
        let reason = match (&self.peer_going_away, why) {
            (_, Some(e)) => format!("carrier failed: {e}"),
            (Some(m), None) => format!("the peer went away: {m}"),
            (None, None) if self.phase == Phase::Handshake => "closed before HELLO".to_owned(),
            (None, None) => "the peer closed the connection".to_owned(),
        };
        self.set_closed(reason);
    }

    /// The peer did not complete the handshake in time: `GOAWAY` code 4 and closed.
    pub fn handle_hello_timeout(&mut self) {
        if self.phase == Phase::Handshake {
            self.violation(
                goaway::TIMEOUT,
                "the peer did not send HELLO in time".to_owned(),
            );
        }
    }

    fn violation(&mut self, code: u16, why: String) {
        if matches!(self.phase, Phase::Closed(_)) {
            return;
        }
        let payload = frame::encode_goaway(self.last_peer_id, code, &why);
        self.push_frame(FrameType::GoAway, 0, 0, &payload);
        self.set_closed(format!("protocol violation by the peer: {why}"));
    }

    fn set_closed(&mut self, reason: String) {
        if matches!(self.phase, Phase::Closed(_)) {
            return;
        }
        self.phase = Phase::Closed(reason.clone());
        self.calls.clear();
        self.buffered = 0;
        self.events.push_back(Event::Closed { reason });
    }

    fn is_peer_id(&self, id: u32) -> bool {
        id != 0
            && match self.role {
                Role::Initiator => id.is_multiple_of(2),
                Role::Acceptor => !id.is_multiple_of(2),
            }
    }

    /// Whether a frame for a call not in the table is for one that existed (and is over), as
    /// opposed to one never started (a violation).
    fn was_started(&self, id: u32) -> bool {
        if self.is_peer_id(id) {
            id <= self.last_peer_id
        } else {
            id < self.next_id
        }
    }

    fn on_frame(&mut self, f: Frame) -> Result<(), (u16, String)> {
        let proto = |why: String| (goaway::PROTOCOL_ERROR, why);
        if self.phase == Phase::Handshake {
            if f.ty != FrameType::Hello || f.call != 0 {
                return Err(proto(format!("first frame is {:?}, not HELLO", f.ty)));
            }
            let hello = Hello::parse(&f.payload).map_err(|e| match e {
                HelloError::Version(_) => (goaway::VERSION, e.to_string()),
                _ => proto(e.to_string()),
            })?;
            if let Some(w) = hello.conn_window {
                self.conn_send = SendWindow::new(w);
            }
            self.peer = Some(hello);
            self.phase = Phase::Open;
            return Ok(());
        }
        let id = f.call;
        let connection_frame = matches!(
            f.ty,
            FrameType::Hello | FrameType::Ping | FrameType::Pong | FrameType::GoAway
        );
        if connection_frame && id != 0 {
            return Err(proto(format!("{:?} on call {id} (must be call 0)", f.ty)));
        }
        if !connection_frame && id == 0 && f.ty != FrameType::Window {
            return Err(proto(format!("{:?} on call 0", f.ty)));
        }
        match f.ty {
            FrameType::Hello => Err(proto("second HELLO".into())),
            FrameType::Ping => {
                if f.payload.len() > frame::MAX_PING {
                    return Err(proto(format!(
                        "PING of {} bytes (at most {})",
                        f.payload.len(),
                        frame::MAX_PING
                    )));
                }
                self.push_frame(FrameType::Pong, 0, 0, &f.payload);
                self.pong_pending = true;
                Ok(())
            }
            FrameType::Pong => Ok(()),
            FrameType::GoAway => {
                let (last_call, code, message) =
                    frame::decode_goaway(&f.payload).map_err(|e| proto(e.to_string()))?;
                let shown = if message.is_empty() {
                    "the peer is going away".to_owned()
                } else {
                    message.clone()
                };
                self.peer_going_away = Some(shown);
                self.events.push_back(Event::GoAway {
                    last_call,
                    code,
                    message,
                });
                Ok(())
            }
            FrameType::Request => self.on_request(f),
            FrameType::Response => self.on_response(f),
            FrameType::Data | FrameType::End => self.on_body(f),
            FrameType::Window => self.on_window(f),
            FrameType::Cancel => {
                if !self.is_peer_id(id) {
                    return Err(proto(format!("CANCEL for call {id}, which we started")));
                }
                if self.calls.remove(id).is_some() {
                    self.events.push_back(Event::Cancel { call: id });
                } else if !self.was_started(id) {
                    return Err(proto(format!("CANCEL for call {id}, never started")));
                }
                Ok(())
            }
            FrameType::Reset => {
                let (status, message) =
                    frame::decode_reset(&f.payload).map_err(|e| proto(e.to_string()))?;
                let Some(call) = self.calls.get_mut(id) else {
                    return if self.was_started(id) {
                        Ok(())
                    } else {
                        Err(proto(format!("RESET for call {id}, never started")))
                    };
                };
                if call.local {
                    self.calls.remove(id);
                } else {
                    // The peer's request body failed; our answer may still go out.
                    call.recv_open = false;
                    self.calls.remove_if_done(id);
                }
                self.events.push_back(Event::Reset {
                    call: id,
                    status,
                    message,
                });
                Ok(())
            }
        }
    }

    fn on_request(&mut self, f: Frame) -> Result<(), (u16, String)> {
        let id = f.call;
        if !self.is_peer_id(id) {
            return Err((
                goaway::PROTOCOL_ERROR,
                format!("REQUEST with call id {id} of the wrong parity"),
            ));
        }
        if id <= self.last_peer_id {
            return Err((
                goaway::PROTOCOL_ERROR,
                format!(
                    "REQUEST with call id {id}, not above the last one ({})",
                    self.last_peer_id
                ),
            ));
        }
        self.last_peer_id = id;
        let refuse = |status: u16, msg: String| Some((status, msg));
        let refusal = if f.payload.len() > self.limits.max_head as usize {
            refuse(431, "request head is too large".into())
        } else if self.refusing {
            refuse(503, "the server is shutting down (GOAWAY sent)".into())
        } else if self.calls.served() >= self.limits.max_concurrent_calls as usize {
            refuse(
                429,
                format!(
                    "too many concurrent calls on this connection (limit {})",
                    self.limits.max_concurrent_calls
                ),
            )
        } else {
            None
        };
        let head = match refusal {
            Some(r) => Err(r),
            None => Head::decode_request(&f.payload).map_err(|e| (400, e.to_string())),
        };
        let Ok(Head::Request {
            method,
            target,
            headers,
        }) = head
        else {
            let (status, msg) = head.err().unwrap_or((400, "not a request head".into()));
            if status == 429 {
                tracing::warn!(
                    limit = self.limits.max_concurrent_calls,
                    "too many concurrent calls"
                );
            }
            self.push_frame(
                FrameType::Reset,
                FLAG_END,
                id,
                &frame::encode_reset(status, &msg),
            );
            // The call is over: any body the peer already sent counts against the connection
            // window and is given back (see on_body).
            return Ok(());
        };
        let peer_window = self.peer.as_ref().map_or(0, |h| h.window);
        self.calls.insert(
            id,
            Call {
                local: false,
                send_open: true,
                recv_open: !f.is_end(),
                head_received: true,
                head_sent: false,
                send: SendWindow::new(peer_window),
                recv: RecvWindow::new(self.limits.initial_window),
            },
        );
        self.events.push_back(Event::Request {
            call: id,
            method,
            target,
            headers,
            end: f.is_end(),
        });
        Ok(())
    }

    fn on_response(&mut self, f: Frame) -> Result<(), (u16, String)> {
        let id = f.call;
        let proto = |why: String| (goaway::PROTOCOL_ERROR, why);
        if self.is_peer_id(id) {
            return Err(proto(format!(
                "RESPONSE on call {id}, which the peer started"
            )));
        }
        let Some(call) = self.calls.get_mut(id) else {
            return if self.was_started(id) {
                Ok(())
            } else {
                Err(proto(format!("RESPONSE for call {id}, never started")))
            };
        };
        if call.head_received {
            return Err(proto(format!("second RESPONSE on call {id}")));
        }
        let Head::Response { status, headers } =
            Head::decode_response(&f.payload).map_err(|e| proto(e.to_string()))?
        else {
            return Err(proto("not a response head".into()));
        };
        if !(100..=999).contains(&status) {
            return Err(proto(format!("status {status} is not three digits")));
        }
        call.head_received = true;
        if f.is_end() {
            call.recv_open = false;
            // The answer is complete: a request body still being sent is not needed (§4).
            self.calls.remove(id);
        }
        self.events.push_back(Event::Response {
            call: id,
            status,
            headers,
            end: f.is_end(),
        });
        Ok(())
    }

    fn on_body(&mut self, f: Frame) -> Result<(), (u16, String)> {
        let id = f.call;
        let proto = |why: String| (goaway::PROTOCOL_ERROR, why);
        let flow = |why: String| (goaway::FLOW_CONTROL, why);
        let end = f.is_end() || f.ty == FrameType::End;
        let trailers = if f.ty == FrameType::End {
            Some(frame::decode_headers(&mut &f.payload[..]).map_err(|e| proto(e.to_string()))?)
        } else {
            None
        };
        let len = if f.ty == FrameType::Data {
            f.payload.len()
        } else {
            0
        };
        // Every DATA byte counts against the connection window, whatever call it is for.
        let strict = self.peer.as_ref().is_some_and(|h| h.conn_window.is_some());
        if self.conn_recv.receive(len).is_err() && strict {
            return Err(flow(format!(
                "sent past the connection window of {} bytes",
                self.limits.connection_window
            )));
        }
        self.buffered += len as u64;
        let Some(call) = self.calls.get_mut(id) else {
            if !self.was_started(id) {
                return Err(proto(format!("{:?} for call {id}, never started", f.ty)));
            }
            // A call that is over (cancelled, reset, answered early): drop the bytes and give
            // their connection window back at once.
            self.consume(id, len);
            return Ok(());
        };
        if call.local && !call.head_received {
            return Err(proto(format!("{:?} before RESPONSE on call {id}", f.ty)));
        }
        if !call.recv_open {
            return Err(proto(format!("{:?} after the end of call {id}", f.ty)));
        }
        if call.recv.receive(len).is_err() {
            return Err(flow(format!("call {id} sent past its window")));
        }
        if end {
            call.recv_open = false;
            let local = call.local;
            if local {
                // The answer is complete: the call is over, whatever we were still sending.
                self.calls.remove(id);
            } else {
                self.calls.remove_if_done(id);
            }
        }
        match trailers {
            Some(trailers) => self
                .events
                .push_back(Event::Trailers { call: id, trailers }),
            None => self.events.push_back(Event::Data {
                call: id,
                data: f.payload,
                end,
            }),
        }
        Ok(())
    }

    fn on_window(&mut self, f: Frame) -> Result<(), (u16, String)> {
        let id = f.call;
        let n = frame::decode_window(&f.payload)
            .map_err(|e| (goaway::PROTOCOL_ERROR, e.to_string()))?;
        if n == 0 {
            return Err((goaway::PROTOCOL_ERROR, "WINDOW increment of 0".into()));
        }
        let overflow = |what: String| {
            (
                goaway::FLOW_CONTROL,
                format!("WINDOW takes {what} past 2^31-1"),
            )
        };
        if id == 0 {
            self.conn_send
                .grant(n)
                .map_err(|()| overflow("the connection window".into()))?;
            self.events.push_back(Event::ConnectionCapacity);
            return Ok(());
        }
        let started = self.was_started(id);
        match self.calls.get_mut(id) {
            Some(c) => {
                c.send
                    .grant(n)
                    .map_err(|()| overflow(format!("the window of call {id}")))?;
                self.events.push_back(Event::Capacity { call: id });
                Ok(())
            }
            None if started => Ok(()),
            None => Err((
                goaway::PROTOCOL_ERROR,
                format!("WINDOW for call {id}, never started"),
            )),
        }
    }

    // ---- commands ----

    fn check_open(&self) -> Result<(), SendError> {
        match &self.phase {
            Phase::Open => Ok(()),
            Phase::Closed(r) => Err(SendError::Closed(r.clone())),
            Phase::Handshake => Err(SendError::Closed("the handshake is not done".into())),
        }
    }

    /// Starts a call: queues its `REQUEST` and returns its id. `end`: no body follows.
    pub fn start_request(
        &mut self,
        method: &str,
        target: &str,
        headers: &HeaderMap,
        end: bool,
    ) -> Result<u32, SendError> {
        self.check_open()?;
        if let Some(why) = &self.peer_going_away {
            return Err(SendError::GoingAway(why.clone()));
        }
        let mut payload = BytesMut::new();
        frame::encode_request(method, target, headers, &mut payload)?;
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(2);
        self.push_frame(FrameType::Request, u8::from(end), id, &payload);
        let peer_window = self.peer.as_ref().map_or(0, |h| h.window);
        self.calls.insert(
            id,
            Call {
                local: true,
                send_open: !end,
                recv_open: true,
                head_received: false,
                head_sent: true,
                send: SendWindow::new(peer_window),
                recv: RecvWindow::new(self.limits.initial_window),
            },
        );
        Ok(id)
    }

    /// Answers a served call: queues its `RESPONSE`. `end`: no body follows.
    pub fn send_response(
        &mut self,
        call: u32,
        status: u16,
        headers: &HeaderMap,
        end: bool,
    ) -> Result<(), SendError> {
        self.check_open()?;
        let c = match self.calls.get_mut(call) {
            Some(c) if !c.local && !c.head_sent => c,
            _ => return Err(SendError::NotOpen(call)),
        };
        let mut payload = BytesMut::new();
        Head::Response {
            status,
            headers: headers.clone(),
        }
        .encode(&mut payload)?;
        c.head_sent = true;
        self.push_frame(FrameType::Response, u8::from(end), call, &payload);
        if end {
            self.end_send(call);
        }
        Ok(())
    }

    /// Queues body bytes of a call; at most [`send_capacity`](Self::send_capacity) of them.
    /// `end`: they are the last.
    pub fn send_data(&mut self, call: u32, data: &[u8], end: bool) -> Result<(), SendError> {
        self.check_open()?;
        let available = self.send_capacity(call);
        let c = match self.calls.get_mut(call) {
            Some(c) if c.send_open && c.head_sent => c,
            _ => return Err(SendError::NotOpen(call)),
        };
        if data.len() > available {
            return Err(SendError::OverWindow {
                call,
                len: data.len(),
                available,
            });
        }
        c.send.take(data.len());
        self.conn_send.take(data.len());
        self.push_frame(FrameType::Data, u8::from(end), call, data);
        if end {
            self.end_send(call);
        }
        Ok(())
    }

    /// Ends a call's body with trailers (an `END` frame).
    pub fn send_trailers(&mut self, call: u32, trailers: &HeaderMap) -> Result<(), SendError> {
        self.check_open()?;
        match self.calls.get(call) {
            Some(c) if c.send_open && c.head_sent => {}
            _ => return Err(SendError::NotOpen(call)),
        }
        let mut payload = BytesMut::new();
        frame::encode_headers(trailers, &mut payload)?;
        self.push_frame(FrameType::End, FLAG_END, call, &payload);
        self.end_send(call);
        Ok(())
    }

    /// Ends a call abnormally in our direction with `RESET` (status and message): on a served
    /// call it replaces the answer or cuts its body short, on ours it says the request body
    /// failed.
    pub fn send_reset(&mut self, call: u32, status: u16, message: &str) -> Result<(), SendError> {
        self.check_open()?;
        match self.calls.get(call) {
            Some(c) if c.send_open => {}
            _ => return Err(SendError::NotOpen(call)),
        }
        self.push_frame(
            FrameType::Reset,
            FLAG_END,
            call,
            &frame::encode_reset(status, message),
        );
        self.end_send(call);
        Ok(())
    }

    fn end_send(&mut self, call: u32) {
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        c.send_open = false;
        if !c.local {
            // A served call is over once answered; the rest of its request body, if any, is
            // dropped as it arrives (§4).
            self.calls.remove(call);
        } else {
            self.calls.remove_if_done(call);
        }
    }

    /// Abandons a call we made: `CANCEL`, and it is forgotten (later frames for it are
    /// dropped). Does nothing for a call that is already over.
    pub fn cancel(&mut self, call: u32) {
        if self.calls.get(call).is_some_and(|c| c.local) && self.is_open() {
            self.calls.remove(call);
            self.push_frame(FrameType::Cancel, 0, call, &[]);
        }
    }

    /// The application consumed (or dropped) `n` body bytes of a call: grants window back to
    /// the peer, for the call and for the connection, in batches.
    pub fn consume(&mut self, call: u32, n: usize) {
        if n == 0 || !self.is_open() {
            return;
        }
        self.buffered = self.buffered.saturating_sub(n as u64);
        if let Some(c) = self.calls.get_mut(call)
            && c.recv_open
            && let Some(grant) = c.recv.consume(n)
        {
            self.push_frame(FrameType::Window, 0, call, &frame::encode_window(grant));
        }
        if let Some(grant) = self.conn_recv.consume(n)
            && self.peer.as_ref().is_some_and(|h| h.conn_window.is_some())
        {
            self.push_frame(FrameType::Window, 0, 0, &frame::encode_window(grant));
        }
    }

    /// Starts a graceful close: `GOAWAY` code 0; new calls from the peer are refused with 503
    /// from now on, calls in flight go on.
    pub fn go_away(&mut self, message: &str) {
        if self.refusing || !self.is_open() {
            return;
        }
        self.refusing = true;
        let payload = frame::encode_goaway(self.last_peer_id, goaway::NORMAL, message);
        self.push_frame(FrameType::GoAway, 0, 0, &payload);
    }

    /// Closes: a final `GOAWAY` with this code and message, and every call is over.
    pub fn close(&mut self, code: u16, message: &str) {
        if matches!(self.phase, Phase::Closed(_)) {
            return;
        }
        let payload = frame::encode_goaway(self.last_peer_id, code, message);
        self.push_frame(FrameType::GoAway, 0, 0, &payload);
        self.set_closed(message.to_owned());
    }

    /// Ids of the calls in flight.
    pub fn call_ids(&self) -> Vec<u32> {
        self.calls.ids().collect()
    }
}
