//! Input: every frame the peer sends, checked against every rule a receiver must check.

use super::calls::Call;
use super::event::Event;
use super::flow::{RecvWindow, SendWindow};
use super::{Conn, Phase};
use crate::proto::frame::{self, FLAG_END, Frame, FrameType, Head, goaway};
use crate::proto::hello::{Hello, HelloError};

impl Conn {
    pub(super) fn on_frame(&mut self, f: Frame) -> Result<(), (u16, String)> {
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
            self.codec.skip_flagged();
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
            // Unsolicited or not, a PONG asks nothing; one larger than any PING is malformed.
            FrameType::Pong if f.payload.len() > frame::MAX_PING => Err(proto(format!(
                "PONG of {} bytes (at most {})",
                f.payload.len(),
                frame::MAX_PING
            ))),
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
                crate::logging::limited("too-many-calls", || {
                    tracing::warn!(
                        limit = self.limits.max_concurrent_calls,
                        "too many concurrent calls"
                    );
                });
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
}
