//! Commands from the application: calls, answers, bodies, cancellation and closing.

use bytes::BytesMut;
use http::HeaderMap;

use super::calls::{Call, Half, Origin};
use super::event::SendError;
use super::flow::{RecvWindow, SendWindow};
use super::{Conn, Phase};
use crate::proto::CallId;
use crate::proto::frame::{self, FLAG_END, FrameType, GoAway, Reset, goaway};

impl Conn {
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
    ) -> Result<CallId, SendError> {
        self.check_open()?;
        if let Some(why) = &self.peer_going_away {
            return Err(SendError::GoingAway(why.clone()));
        }
        if self.peer.as_ref().is_some_and(|h| h.max_calls == 0) {
            return Err(SendError::TakesNoCalls);
        }
        let id = self.next_id.ok_or(SendError::IdsExhausted)?;
        let mut payload = BytesMut::new();
        frame::encode_request(method, target, headers, &mut payload)?;
        self.next_id = id.next();
        self.push_frame(FrameType::Request, u8::from(end), id, &payload);
        let peer_window = self.peer.as_ref().map_or(0, |h| h.window);
        self.calls.insert(
            id,
            Call {
                origin: Origin::Local,
                send: if end { Half::Closed } else { Half::Body },
                recv: Half::Head,
                send_window: SendWindow::new(peer_window),
                recv_window: RecvWindow::new(self.limits.initial_window),
            },
        );
        Ok(id)
    }

    /// Answers a served call: queues its `RESPONSE`. `end`: no body follows.
    pub fn send_response(
        &mut self,
        call: CallId,
        status: u16,
        headers: &HeaderMap,
        end: bool,
    ) -> Result<(), SendError> {
        self.check_open()?;
        let c = match self.calls.get_mut(call) {
            Some(c) if c.origin == Origin::Peer && c.send == Half::Head => c,
            _ => return Err(SendError::NotOpen(call)),
        };
        let mut payload = BytesMut::new();
        frame::encode_response(status, headers, &mut payload)?;
        c.send = Half::Body;
        self.push_frame(FrameType::Response, u8::from(end), call, &payload);
        if end {
            self.end_send(call);
        }
        Ok(())
    }

    /// Queues body bytes of a call; at most [`send_capacity`](Self::send_capacity) of them.
    /// `end`: they are the last.
    pub fn send_data(&mut self, call: CallId, data: &[u8], end: bool) -> Result<(), SendError> {
        self.check_open()?;
        let available = self.send_capacity(call);
        let c = match self.calls.get_mut(call) {
            Some(c) if c.send == Half::Body => c,
            _ => return Err(SendError::NotOpen(call)),
        };
        if data.len() > available {
            return Err(SendError::OverWindow {
                call,
                len: data.len(),
                available,
            });
        }
        c.send_window.take(data.len());
        self.conn_send.take(data.len());
        self.push_frame(FrameType::Data, u8::from(end), call, data);
        if end {
            self.end_send(call);
        }
        Ok(())
    }

    /// Queues as many of `data`'s bytes as the windows allow now (none when they are shut),
    /// not the last; returns how many. Sizing and sending in one step, so no other call can
    /// take the connection window in between.
    pub fn send_data_up_to(&mut self, call: CallId, data: &[u8]) -> Result<usize, SendError> {
        let n = self.send_capacity(call).min(data.len());
        if n == 0 {
            self.check_open()?;
            return match self.calls.get(call) {
                Some(c) if c.send == Half::Body => Ok(0),
                _ => Err(SendError::NotOpen(call)),
            };
        }
        self.send_data(call, &data[..n], false).map(|()| n)
    }

    /// Whether we may still send frames for this call (it is open in our direction).
    pub fn is_sending(&self, call: CallId) -> bool {
        self.calls.get(call).is_some_and(|c| c.send != Half::Closed)
    }

    /// Ends a call's body with trailers (an `END` frame).
    pub fn send_trailers(&mut self, call: CallId, trailers: &HeaderMap) -> Result<(), SendError> {
        self.check_open()?;
        match self.calls.get(call) {
            Some(c) if c.send == Half::Body => {}
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
    pub fn send_reset(
        &mut self,
        call: CallId,
        status: u16,
        message: &str,
    ) -> Result<(), SendError> {
        self.check_open()?;
        match self.calls.get(call) {
            Some(c) if c.send != Half::Closed => {}
            _ => return Err(SendError::NotOpen(call)),
        }
        self.push_frame(
            FrameType::Reset,
            FLAG_END,
            call,
            &Reset::encode(status, message),
        );
        self.end_send(call);
        Ok(())
    }

    fn end_send(&mut self, call: CallId) {
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        c.send = Half::Closed;
        if c.origin == Origin::Peer {
            // A served call is over once answered; the rest of its request body, if any, is
            // dropped as it arrives (§4).
            self.calls.remove(call);
        } else {
            self.calls.remove_if_done(call);
        }
    }

    /// Abandons a call we made: `CANCEL`, and it is forgotten (later frames for it are
    /// dropped). Does nothing for a call that is already over.
    pub fn cancel(&mut self, call: CallId) {
        if self
            .calls
            .get(call)
            .is_some_and(|c| c.origin == Origin::Local)
            && self.is_open()
        {
            self.calls.remove(call);
            self.push_frame(FrameType::Cancel, 0, call, &[]);
        }
    }

    /// The application consumed (or dropped) `n` body bytes of a call: grants window back to
    /// the peer, for the call and for the connection, in batches.
    pub fn consume(&mut self, call: CallId, n: usize) {
        if n == 0 || !self.is_open() {
            return;
        }
        self.buffered = self.buffered.saturating_sub(n as u64);
        if let Some(c) = self.calls.get_mut(call)
            && c.recv != Half::Closed
            && let Some(grant) = c.recv_window.consume(n)
        {
            self.push_frame(FrameType::Window, 0, call, &frame::encode_window(grant));
        }
        if let Some(grant) = self.conn_recv.consume(n)
            && self.peer_keeps_conn_window()
        {
            let window = frame::encode_window(grant);
            self.push_frame(FrameType::Window, 0, CallId::CONNECTION, &window);
        }
    }

    /// Starts a graceful close: `GOAWAY` code 0; new calls from the peer are refused with 503
    /// from now on, calls in flight go on.
    pub fn go_away(&mut self, message: &str) {
        if self.refusing || !self.is_open() {
            return;
        }
        self.refusing = true;
        let payload = GoAway::encode(self.last_peer_id, goaway::NORMAL, message);
        self.push_frame(FrameType::GoAway, 0, CallId::CONNECTION, &payload);
    }

    /// Closes: a final `GOAWAY` with this code and message, and every call is over.
    pub fn close(&mut self, code: u16, message: &str) {
        if matches!(self.phase, Phase::Closed(_)) {
            return;
        }
        let payload = GoAway::encode(self.last_peer_id, code, message);
        self.push_frame(FrameType::GoAway, 0, CallId::CONNECTION, &payload);
        self.set_closed(message.to_owned());
    }

    /// Ids of the calls in flight.
    pub fn call_ids(&self) -> Vec<CallId> {
        self.calls.ids().collect()
    }
}
