//! Input: every frame the peer sends, checked against every rule a receiver must check.

use super::calls::{Call, Half, Origin};
use super::event::{Event, Violation};
use super::flow::{RecvWindow, SendWindow};
use super::{Conn, Phase};
use crate::proto::frame::{self, FLAG_END, Frame, FrameType, GoAway, Head, Reset, goaway};
use crate::proto::hello::{Hello, HelloError};

impl Conn {
    pub(super) fn on_frame(&mut self, f: Frame) -> Result<(), Violation> {
        if self.phase == Phase::Handshake {
            return self.on_hello(f);
        }
        let id = f.call;
        let connection_frame = matches!(
            f.ty,
            FrameType::Hello | FrameType::Ping | FrameType::Pong | FrameType::GoAway
        );
        if connection_frame && !id.is_connection() {
            return Err(Violation::protocol(format!(
                "{:?} on call {id} (must be call 0)",
                f.ty
            )));
        }
        if !connection_frame && id.is_connection() && f.ty != FrameType::Window {
            return Err(Violation::protocol(format!("{:?} on call 0", f.ty)));
        }
        match f.ty {
            FrameType::Hello => Err(Violation::protocol("second HELLO")),
            FrameType::Ping | FrameType::Pong if f.payload.len() > frame::MAX_PING => {
                let name = if f.ty == FrameType::Ping {
                    "PING"
                } else {
                    "PONG"
                };
                Err(Violation::protocol(format!(
                    "{name} of {} bytes (at most {})",
                    f.payload.len(),
                    frame::MAX_PING
                )))
            }
            FrameType::Ping => {
                self.push_frame(FrameType::Pong, 0, id, &f.payload);
                self.pong_pending = true;
                Ok(())
            }
            // Unsolicited or not, a PONG asks nothing.
            FrameType::Pong => Ok(()),
            FrameType::GoAway => {
                let g = GoAway::decode(&f.payload).map_err(Violation::malformed)?;
                let shown = if g.message.is_empty() {
                    "the peer is going away".to_owned()
                } else {
                    g.message.clone()
                };
                self.peer_going_away = Some(shown);
                self.events.push_back(Event::GoAway {
                    last_call: g.last_call,
                    code: g.code,
                    message: g.message,
                });
                Ok(())
            }
            FrameType::Request => self.on_request(f),
            FrameType::Response => self.on_response(f),
            FrameType::Data | FrameType::End => self.on_body(f),
            FrameType::Window => self.on_window(f),
            FrameType::Cancel => {
                if !self.is_peer_id(id) {
                    return Err(Violation::protocol(format!(
                        "CANCEL for call {id}, which we started"
                    )));
                }
                if self.calls.remove(id).is_some() {
                    self.events.push_back(Event::Cancel { call: id });
                } else if !self.was_started(id) {
                    return Err(Violation::protocol(format!(
                        "CANCEL for call {id}, never started"
                    )));
                }
                Ok(())
            }
            FrameType::Reset => {
                let r = Reset::decode(&f.payload).map_err(Violation::malformed)?;
                let Some(call) = self.calls.get_mut(id) else {
                    return if self.was_started(id) {
                        Ok(())
                    } else {
                        Err(Violation::protocol(format!(
                            "RESET for call {id}, never started"
                        )))
                    };
                };
                if call.origin == Origin::Local {
                    self.calls.remove(id);
                } else {
                    // The peer's request body failed; our answer may still go out.
                    call.recv = Half::Closed;
                    self.calls.remove_if_done(id);
                }
                self.events.push_back(Event::Reset {
                    call: id,
                    status: r.status,
                    message: r.message,
                });
                Ok(())
            }
        }
    }

    fn on_hello(&mut self, f: Frame) -> Result<(), Violation> {
        if f.ty != FrameType::Hello {
            return Err(Violation::protocol(format!(
                "first frame is {:?}, not HELLO",
                f.ty
            )));
        }
        if !f.call.is_connection() {
            return Err(Violation::protocol(format!(
                "HELLO on call {} (must be call 0)",
                f.call
            )));
        }
        let hello = Hello::parse(&f.payload).map_err(|e| match e {
            HelloError::Version(_) => Violation::new(goaway::VERSION, e.to_string()),
            _ => Violation::protocol(e.to_string()),
        })?;
        if let Some(w) = hello.conn_window {
            self.conn_send = SendWindow::new(w);
        }
        self.peer = Some(hello);
        self.phase = Phase::Open;
        self.codec.skip_flagged();
        Ok(())
    }

    fn on_request(&mut self, f: Frame) -> Result<(), Violation> {
        let id = f.call;
        if !self.is_peer_id(id) {
            return Err(Violation::protocol(format!(
                "REQUEST with call id {id} of the wrong parity"
            )));
        }
        if id <= self.last_peer_id {
            return Err(Violation::protocol(format!(
                "REQUEST with call id {id}, not above the last one ({})",
                self.last_peer_id
            )));
        }
        self.last_peer_id = id;
        let refusal = if f.payload.len() > self.limits.max_head as usize {
            Some((431, "request head is too large".to_owned()))
        } else if self.refusing {
            Some((503, "the server is shutting down (GOAWAY sent)".to_owned()))
        } else if self.calls.served() >= self.limits.max_concurrent_calls as usize {
            crate::logging::limited("too-many-calls", || {
                tracing::warn!(
                    limit = self.limits.max_concurrent_calls,
                    "too many concurrent calls"
                );
            });
            Some((
                429,
                format!(
                    "too many concurrent calls on this connection (limit {})",
                    self.limits.max_concurrent_calls
                ),
            ))
        } else {
            None
        };
        let head = match refusal {
            Some(r) => Err(r),
            None => match Head::decode_request(&f.payload) {
                Ok(Head::Request {
                    method,
                    target,
                    headers,
                }) => Ok((method, target, headers)),
                Ok(Head::Response { .. }) => Err((400, "not a request head".to_owned())),
                Err(e) => Err((400, e.to_string())),
            },
        };
        let (method, target, headers) = match head {
            Ok(h) => h,
            Err((status, msg)) => {
                self.push_frame(FrameType::Reset, FLAG_END, id, &Reset::encode(status, &msg));
                // The call is over: any body the peer already sent counts against the
                // connection window and is given back (see on_body).
                return Ok(());
            }
        };
        let peer_window = self.peer.as_ref().map_or(0, |h| h.window);
        self.calls.insert(
            id,
            Call {
                origin: Origin::Peer,
                send: Half::Head,
                recv: if f.is_end() { Half::Closed } else { Half::Body },
                send_window: SendWindow::new(peer_window),
                recv_window: RecvWindow::new(self.limits.initial_window),
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

    fn on_response(&mut self, f: Frame) -> Result<(), Violation> {
        let id = f.call;
        if self.is_peer_id(id) {
            return Err(Violation::protocol(format!(
                "RESPONSE on call {id}, which the peer started"
            )));
        }
        // A malformed payload breaks the protocol whatever call it is for.
        let Head::Response { status, headers } =
            Head::decode_response(&f.payload).map_err(Violation::malformed)?
        else {
            return Err(Violation::protocol("not a response head"));
        };
        if !(100..=999).contains(&status) {
            return Err(Violation::protocol(format!(
                "status {status} is not three digits"
            )));
        }
        let Some(call) = self.calls.get_mut(id) else {
            return if self.was_started(id) {
                Ok(())
            } else {
                Err(Violation::protocol(format!(
                    "RESPONSE for call {id}, never started"
                )))
            };
        };
        if call.recv != Half::Head {
            return Err(Violation::protocol(format!("second RESPONSE on call {id}")));
        }
        call.recv = Half::Body;
        if f.is_end() {
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

    fn on_body(&mut self, f: Frame) -> Result<(), Violation> {
        let id = f.call;
        let end = f.is_end() || f.ty == FrameType::End;
        let trailers = if f.ty == FrameType::End {
            Some(frame::decode_headers(&mut &f.payload[..]).map_err(Violation::malformed)?)
        } else {
            None
        };
        let len = if f.ty == FrameType::Data {
            f.payload.len()
        } else {
            0
        };
        if !self.calls.contains(id) && !self.was_started(id) {
            return Err(Violation::protocol(format!(
                "{:?} for call {id}, never started",
                f.ty
            )));
        }
        // Every DATA byte counts against the connection window, whatever call it is for.
        if self.conn_recv.receive(len).is_err() && self.peer_keeps_conn_window() {
            return Err(Violation::flow(format!(
                "sent past the connection window of {} bytes",
                self.limits.connection_window
            )));
        }
        self.buffered += len as u64;
        let Some(call) = self.calls.get_mut(id) else {
            // A call that is over (cancelled, reset, answered early): drop the bytes and give
            // their connection window back at once.
            self.consume(id, len);
            return Ok(());
        };
        match call.recv {
            Half::Head => {
                return Err(Violation::protocol(format!(
                    "{:?} before RESPONSE on call {id}",
                    f.ty
                )));
            }
            Half::Closed => {
                return Err(Violation::protocol(format!(
                    "{:?} after the end of call {id}",
                    f.ty
                )));
            }
            Half::Body => {}
        }
        if call.recv_window.receive(len).is_err() {
            return Err(Violation::flow(format!("call {id} sent past its window")));
        }
        if end {
            call.recv = Half::Closed;
            if call.origin == Origin::Local {
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

    fn on_window(&mut self, f: Frame) -> Result<(), Violation> {
        let id = f.call;
        let n = frame::decode_window(&f.payload).map_err(Violation::malformed)?;
        if n == 0 {
            return Err(Violation::protocol("WINDOW increment of 0"));
        }
        let overflow = |what: String| Violation::flow(format!("WINDOW takes {what} past 2^31-1"));
        if id.is_connection() {
            self.conn_send
                .grant(n)
                .map_err(|()| overflow("the connection window".into()))?;
            self.events.push_back(Event::ConnectionCapacity);
            return Ok(());
        }
        let started = self.was_started(id);
        match self.calls.get_mut(id) {
            Some(c) => {
                c.send_window
                    .grant(n)
                    .map_err(|()| overflow(format!("the window of call {id}")))?;
                self.events.push_back(Event::Capacity { call: id });
                Ok(())
            }
            None if started => Ok(()),
            None => Err(Violation::protocol(format!(
                "WINDOW for call {id}, never started"
            ))),
        }
    }
}
