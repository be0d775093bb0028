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
mod recv;
mod send;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use self::calls::{Calls, Half};
pub use self::event::{Event, SendError, Violation};
use self::flow::{RecvWindow, SendWindow};
use super::CallId;
use super::codec::{Codec, DecodeError};
use super::frame::{self, FrameType, GoAway, goaway};
use super::hello::Hello;
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
    /// The id our next call gets; `None` once ids ran out (they never wrap).
    next_id: Option<CallId>,
    /// Highest call id the peer started (ids must increase).
    last_peer_id: CallId,
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
            next_id: Some(CallId::first(role)),
            last_peer_id: CallId::CONNECTION,
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
        conn.push_frame(FrameType::Hello, 0, CallId::CONNECTION, &hello);
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
        let legacy = self.peer.is_some() && !self.peer_keeps_conn_window();
        !(legacy && self.buffered >= u64::from(self.limits.connection_window))
    }

    /// Whether input waits because the peer does not read what its frames made us write (the
    /// output is over [`OUTPUT_HIGH`], or a `PONG` waits). A driver may read ahead up to a
    /// bound meanwhile, and should close a connection whose peer goes past it.
    pub fn is_output_blocked(&self) -> bool {
        self.out.len() >= OUTPUT_HIGH || self.pong_pending
    }

    /// Whether the application may queue body bytes now (the output is under [`OUTPUT_LOW`]).
    pub fn can_send_data(&self) -> bool {
        self.out.len() < OUTPUT_LOW
    }

    /// How many body bytes a call may send now: the smallest of its window, the connection
    /// window and the largest DATA chunk. 0 when it must wait for [`Event::Capacity`] or
    /// [`Event::ConnectionCapacity`].
    pub fn send_capacity(&self, call: CallId) -> usize {
        match self.calls.get(call) {
            Some(c) if c.send == Half::Body => c
                .send_window
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
    pub fn is_call_open(&self, call: CallId) -> bool {
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

    fn push_frame(&mut self, ty: FrameType, flags: u8, call: CallId, payload: &[u8]) {
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
                    if let Err(v) = self.on_frame(f) {
                        self.violation(v);
                    } else if handshake {
                        return;
                    }
                }
                Err(e) => {
                    let code = match e {
                        DecodeError::TooLarge { .. } => goaway::FRAME_TOO_LARGE,
                        _ => goaway::PROTOCOL_ERROR,
                    };
                    self.violation(Violation::new(code, e.to_string()));
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
            self.violation(Violation::new(
                goaway::TIMEOUT,
                "the peer did not send HELLO in time",
            ));
        }
    }

    fn violation(&mut self, v: Violation) {
        if matches!(self.phase, Phase::Closed(_)) {
            return;
        }
        let payload = GoAway::encode(self.last_peer_id, v.code, &v.reason);
        self.push_frame(FrameType::GoAway, 0, CallId::CONNECTION, &payload);
        self.set_closed(format!("protocol violation by the peer: {}", v.reason));
    }

    /// Whether the peer keeps a connection window (its HELLO has `conn_window`; peers that
    /// predate it are held to none and sent no connection `WINDOW`).
    pub(super) fn peer_keeps_conn_window(&self) -> bool {
        self.peer.as_ref().is_some_and(|h| h.conn_window.is_some())
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

    fn is_peer_id(&self, id: CallId) -> bool {
        id.started_by().is_some_and(|r| r != self.role)
    }

    /// Whether a frame for a call not in the table is for one that existed (and is over), as
    /// opposed to one never started (a violation).
    fn was_started(&self, id: CallId) -> bool {
        if self.is_peer_id(id) {
            id <= self.last_peer_id
        } else {
            // Ids ran out: every one of ours was used.
            self.next_id.is_none_or(|next| id < next)
        }
    }
}
