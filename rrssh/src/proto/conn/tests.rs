//! The protocol core without I/O: frames in, frames and events out.

use bytes::{BufMut, Bytes, BytesMut};
use http::HeaderMap;

use super::*;
use crate::proto::codec::Codec;
use crate::proto::frame::{FLAG_END, Frame, GoAway, Reset};

/// The call id `n`.
const fn cid(n: u32) -> CallId {
    CallId::new(n)
}

const CALL_1: CallId = cid(1);

fn limits() -> Limits {
    Limits {
        initial_window: 1000,
        connection_window: 3000,
        max_concurrent_calls: 4,
        ..Limits::default()
    }
}

/// An acceptor whose handshake with a raw peer is done (the peer's HELLO announced `hello`).
fn acceptor_with(hello: &str) -> Conn {
    let mut c = Conn::new(Role::Acceptor, limits(), None);
    c.take_output();
    let mut buf = frame_bytes(FrameType::Hello, 0, 0, hello.as_bytes());
    c.handle_input(&mut buf);
    assert!(c.is_open(), "{:?}", c.closed_reason());
    c
}

const HELLO: &str =
    r#"{"version":1,"max_frame":1048576,"window":1000,"max_calls":8,"conn_window":3000}"#;
const HELLO_V1_0: &str = r#"{"version":1,"max_frame":1048576,"window":1000,"max_calls":8}"#;

fn frame_bytes(ty: FrameType, flags: u8, call: u32, payload: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    frame::encode_parts(ty, flags, cid(call), payload, &mut b);
    b
}

fn request(call: u32, end: bool) -> BytesMut {
    let mut p = BytesMut::new();
    frame::encode_request("GET", "/x", &HeaderMap::new(), &mut p).unwrap();
    frame_bytes(FrameType::Request, u8::from(end), call, &p)
}

fn feed(c: &mut Conn, mut b: BytesMut) {
    c.handle_input(&mut b);
}

/// The frames a connection wrote.
fn output(c: &mut Conn) -> Vec<Frame> {
    let mut b = BytesMut::from(&c.take_output().unwrap_or_default()[..]);
    let mut codec = Codec::new(1 << 24);
    let mut v = Vec::new();
    while let Some(f) = codec.decode(&mut b).unwrap() {
        v.push(f);
    }
    v
}

fn events(c: &mut Conn) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn goaway_of(frames: &[Frame]) -> (u32, u16, String) {
    let f = frames
        .iter()
        .find(|f| f.ty == FrameType::GoAway)
        .expect("a GOAWAY");
    let g = GoAway::decode(&f.payload).unwrap();
    (g.last_call.get(), g.code, g.message)
}

/// Moves everything `from` wrote into `to`.
fn wire(from: &mut Conn, to: &mut Conn) {
    if let Some(b) = from.take_output() {
        let mut buf = BytesMut::from(&b[..]);
        to.handle_input(&mut buf);
        assert!(buf.is_empty());
    }
}

#[test]
fn two_ends_handshake_call_and_answer() {
    let mut a = Conn::new(Role::Initiator, limits(), Some("svc".into()));
    let mut b = Conn::new(Role::Acceptor, limits(), None);
    wire(&mut a, &mut b);
    wire(&mut b, &mut a);
    assert!(a.is_open() && b.is_open());
    assert_eq!(b.peer_hello().unwrap().service.as_deref(), Some("svc"));
    let id = a
        .start_request("POST", "/echo", &HeaderMap::new(), false)
        .unwrap();
    assert_eq!(id, cid(1));
    a.send_data(id, b"hello", true).unwrap();
    wire(&mut a, &mut b);
    let ev = events(&mut b);
    assert!(
        matches!(&ev[0], Event::Request { call: CALL_1, method, end: false, .. } if method == "POST")
    );
    assert_eq!(
        ev[1],
        Event::Data {
            call: cid(1),
            data: Bytes::from_static(b"hello"),
            end: true
        }
    );
    b.consume(cid(1), 5);
    b.send_response(cid(1), 200, &HeaderMap::new(), false)
        .unwrap();
    b.send_data(cid(1), b"olleh", true).unwrap();
    assert_eq!(
        b.calls_in_flight(),
        0,
        "answered: over on the callee's side"
    );
    wire(&mut b, &mut a);
    let ev = events(&mut a);
    assert!(matches!(
        ev[0],
        Event::Response {
            call: CALL_1,
            status: 200,
            end: false,
            ..
        }
    ));
    assert!(
        matches!(&ev[1], Event::Data { call: CALL_1, end: true, data } if &data[..] == b"olleh")
    );
    assert_eq!(a.calls_in_flight(), 0);
}

#[test]
fn a_bad_hello_gets_goaway_before_closing() {
    for (payload, code) in [
        (&b"not json"[..], goaway::PROTOCOL_ERROR),
        (br#"{"version":1}"#, goaway::PROTOCOL_ERROR),
        (
            br#"{"version":2,"max_frame":1048576,"window":1,"max_calls":1}"#,
            goaway::VERSION,
        ),
        (
            br#"{"version":1,"max_frame":1048576,"window":0,"max_calls":1}"#,
            goaway::PROTOCOL_ERROR,
        ),
        (
            br#"{"version":1,"max_frame":100,"window":1,"max_calls":1}"#,
            goaway::PROTOCOL_ERROR,
        ),
    ] {
        let mut c = Conn::new(Role::Acceptor, limits(), None);
        c.take_output();
        feed(&mut c, frame_bytes(FrameType::Hello, 0, 0, payload));
        assert!(c.closed_reason().is_some());
        assert_eq!(goaway_of(&output(&mut c)).1, code, "{payload:?}");
    }
    // A first frame that is not HELLO, an oversized length, and silence.
    let mut c = Conn::new(Role::Acceptor, limits(), None);
    c.take_output();
    feed(&mut c, request(1, true));
    assert_eq!(goaway_of(&output(&mut c)).1, goaway::PROTOCOL_ERROR);
    let mut c = Conn::new(Role::Acceptor, limits(), None);
    c.take_output();
    feed(&mut c, BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 1][..]));
    assert_eq!(goaway_of(&output(&mut c)).1, goaway::FRAME_TOO_LARGE);
    let mut c = Conn::new(Role::Acceptor, limits(), None);
    c.take_output();
    c.handle_hello_timeout();
    assert_eq!(goaway_of(&output(&mut c)).1, goaway::TIMEOUT);
}

#[test]
fn violations_name_the_last_peer_call_in_goaway() {
    let mut c = acceptor_with(HELLO);
    feed(&mut c, request(7, true));
    feed(&mut c, frame_bytes(FrameType::Data, 0, 9, b"x"));
    let (last, code, msg) = goaway_of(&output(&mut c));
    assert_eq!((last, code), (7, goaway::PROTOCOL_ERROR));
    assert!(msg.contains("never started"), "{msg}");
}

#[test]
fn call_ids_must_increase_and_have_the_peers_parity() {
    let mut c = acceptor_with(HELLO);
    feed(&mut c, request(2, true));
    assert!(goaway_of(&output(&mut c)).2.contains("parity"));

    let mut c = acceptor_with(HELLO);
    feed(&mut c, request(3, true));
    feed(&mut c, request(3, true));
    assert!(goaway_of(&output(&mut c)).2.contains("not above"));

    let mut c = acceptor_with(HELLO);
    feed(&mut c, request(5, true));
    feed(&mut c, request(1, true));
    assert!(
        c.closed_reason().is_some(),
        "a decreasing id is a violation"
    );
}

#[test]
fn reserved_flags_and_misplaced_call_ids_are_violations() {
    let mut c = acceptor_with(HELLO);
    feed(&mut c, frame_bytes(FrameType::Ping, 0x40, 0, b""));
    assert!(goaway_of(&output(&mut c)).2.contains("reserved"));
    let mut c = acceptor_with(HELLO);
    feed(&mut c, frame_bytes(FrameType::Ping, 0, 3, b""));
    assert!(goaway_of(&output(&mut c)).2.contains("must be call 0"));
    let mut c = acceptor_with(HELLO);
    feed(&mut c, frame_bytes(FrameType::Data, 0, 0, b""));
    assert!(c.closed_reason().is_some());
}

#[test]
fn calls_over_the_limit_get_429_and_a_big_head_431() {
    let mut c = acceptor_with(HELLO);
    for id in [1, 3, 5, 7, 9] {
        feed(&mut c, request(id, true));
    }
    let out = output(&mut c);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].call, cid(9));
    assert_eq!(Reset::decode(&out[0].payload).unwrap().status, 429);
    assert!(c.is_open());

    let mut c = Conn::new(
        Role::Acceptor,
        Limits {
            max_head: 16,
            ..limits()
        },
        None,
    );
    feed(
        &mut c,
        frame_bytes(FrameType::Hello, 0, 0, HELLO.as_bytes()),
    );
    c.take_output();
    let mut p = BytesMut::new();
    frame::encode_request(
        "GET",
        &format!("/{}", "a".repeat(40)),
        &HeaderMap::new(),
        &mut p,
    )
    .unwrap();
    feed(&mut c, frame_bytes(FrameType::Request, 1, 1, &p));
    let out = output(&mut c);
    assert_eq!(Reset::decode(&out[0].payload).unwrap().status, 431);
}

#[test]
fn a_malformed_head_is_reset_400_and_the_connection_lives() {
    let mut c = acceptor_with(HELLO);
    feed(
        &mut c,
        frame_bytes(FrameType::Request, 1, 1, b"\x03G T\x00\x01/\x00\x00"),
    );
    let out = output(&mut c);
    assert_eq!(Reset::decode(&out[0].payload).unwrap().status, 400);
    assert!(c.is_open());
}

#[test]
fn body_past_the_call_window_is_a_flow_control_violation() {
    let mut c = acceptor_with(HELLO);
    feed(&mut c, request(1, false));
    feed(&mut c, frame_bytes(FrameType::Data, 0, 1, &[0; 1000]));
    assert!(c.is_open());
    feed(&mut c, frame_bytes(FrameType::Data, 0, 1, &[0; 1]));
    assert_eq!(goaway_of(&output(&mut c)).1, goaway::FLOW_CONTROL);
}

#[test]
fn the_connection_window_bounds_all_calls_together() {
    let mut c = acceptor_with(HELLO);
    // Two calls, each within its own window, 1,500 + 1,500 = the connection window.
    for id in [1, 3] {
        feed(&mut c, request(id, false));
        feed(&mut c, frame_bytes(FrameType::Data, 0, id, &[0; 750]));
        feed(&mut c, frame_bytes(FrameType::Data, 0, id, &[0; 250]));
    }
    assert_eq!(c.buffered(), 2000);
    // A third call's body would exceed 3,000 unconsumed bytes: cancelled calls still count.
    feed(&mut c, frame_bytes(FrameType::Cancel, 0, 3, b""));
    feed(&mut c, request(5, false));
    feed(&mut c, frame_bytes(FrameType::Data, 0, 5, &[0; 1000]));
    assert!(c.is_open());
    feed(&mut c, frame_bytes(FrameType::Data, 0, 1, &[]));
    feed(&mut c, frame_bytes(FrameType::Data, 0, 5, &[0; 1]));
    assert_eq!(goaway_of(&output(&mut c)).1, goaway::FLOW_CONTROL);
}

#[test]
fn consuming_grants_call_and_connection_windows() {
    let mut c = acceptor_with(HELLO);
    feed(&mut c, request(1, false));
    feed(&mut c, frame_bytes(FrameType::Data, 0, 1, &[0; 800]));
    c.take_output();
    c.consume(cid(1), 800);
    let out = output(&mut c);
    let grants: Vec<(u32, u32)> = out
        .iter()
        .filter(|f| f.ty == FrameType::Window)
        .map(|f| (f.call.get(), frame::decode_window(&f.payload).unwrap()))
        .collect();
    assert_eq!(grants, vec![(1, 800), (0, 800)]);
    assert_eq!(c.buffered(), 0);
}

#[test]
fn a_peer_without_connection_windows_is_paused_not_cut() {
    let mut c = acceptor_with(HELLO_V1_0);
    for id in [1, 3, 5, 7] {
        feed(&mut c, request(id, false));
    }
    let mut buf = BytesMut::new();
    for id in [1, 3, 5, 7] {
        buf.extend_from_slice(&frame_bytes(FrameType::Data, 0, id, &[0; 1000]));
    }
    c.handle_input(&mut buf);
    assert!(
        c.is_open(),
        "no violation for a peer that does not know the rule"
    );
    assert!(!c.wants_input());
    assert_eq!(c.buffered(), 3000);
    assert!(!buf.is_empty(), "the fourth body waits in the read buffer");
    c.consume(cid(1), 1000);
    c.handle_input(&mut buf);
    assert!(buf.is_empty());
    let out = output(&mut c);
    assert!(
        out.iter().all(|f| !f.call.is_connection()),
        "no connection WINDOW for a peer that does not know it"
    );
}

#[test]
fn window_overflow_and_zero_increments_are_violations() {
    let mut c = acceptor_with(HELLO);
    feed(&mut c, request(1, false));
    let w = frame::encode_window(Limits::MAX_WINDOW);
    feed(&mut c, frame_bytes(FrameType::Window, 0, 1, &w));
    assert_eq!(goaway_of(&output(&mut c)).1, goaway::FLOW_CONTROL);
    let mut c = acceptor_with(HELLO);
    feed(
        &mut c,
        frame_bytes(FrameType::Window, 0, 0, &frame::encode_window(0)),
    );
    assert!(goaway_of(&output(&mut c)).2.contains("increment of 0"));
}

#[test]
fn sending_respects_both_windows() {
    let mut c = acceptor_with(
        r#"{"version":1,"max_frame":1048576,"window":1000,"max_calls":8,"conn_window":1500}"#,
    );
    for id in [1, 3] {
        feed(&mut c, request(id, true));
        c.send_response(cid(id), 200, &HeaderMap::new(), false)
            .unwrap();
    }
    assert_eq!(c.send_capacity(cid(1)), 1000);
    c.send_data(cid(1), &[0; 1000], false).unwrap();
    assert_eq!(c.send_capacity(cid(1)), 0);
    assert_eq!(
        c.send_capacity(cid(3)),
        500,
        "the connection window is shared"
    );
    assert!(matches!(
        c.send_data(cid(3), &[0; 501], false),
        Err(SendError::OverWindow { .. })
    ));
    feed(
        &mut c,
        frame_bytes(FrameType::Window, 0, 0, &frame::encode_window(100)),
    );
    assert_eq!(events(&mut c).last(), Some(&Event::ConnectionCapacity));
    assert_eq!(c.send_capacity(cid(3)), 600);
}

#[test]
fn one_pong_at_a_time_and_small_pings_only() {
    let mut c = acceptor_with(HELLO);
    let mut buf = BytesMut::new();
    for _ in 0..1000 {
        buf.extend_from_slice(&frame_bytes(FrameType::Ping, 0, 0, b"12345678"));
    }
    c.handle_input(&mut buf);
    assert_eq!(
        c.pending_output(),
        18,
        "one PONG waits; the rest is not read"
    );
    assert_eq!(output(&mut c).len(), 1);
    c.handle_input(&mut buf);
    assert_eq!(output(&mut c).len(), 1);

    let mut c = acceptor_with(HELLO);
    feed(&mut c, frame_bytes(FrameType::Ping, 0, 0, &[0; 65]));
    assert!(goaway_of(&output(&mut c)).2.contains("PING"));
}

#[test]
fn a_peer_that_does_not_read_stops_being_read() {
    let mut c = acceptor_with(HELLO);
    // Requests over the limit each get a RESET; with nobody taking the output, reading stops.
    let mut buf = BytesMut::new();
    for i in 0..40_000u32 {
        buf.extend_from_slice(&request(1 + 2 * i, true));
    }
    c.handle_input(&mut buf);
    assert!(!buf.is_empty());
    assert!(c.pending_output() < OUTPUT_HIGH + 1024);
    assert!(!c.wants_input());
}

#[test]
fn frames_for_finished_calls_are_dropped_and_their_window_given_back() {
    let mut c = acceptor_with(HELLO);
    feed(&mut c, request(1, false));
    // Answered before the body arrived (an early 413): the call is over on this side.
    c.send_response(cid(1), 413, &HeaderMap::new(), true)
        .unwrap();
    c.take_output();
    feed(&mut c, frame_bytes(FrameType::Data, 0, 1, &[0; 1000]));
    feed(&mut c, frame_bytes(FrameType::Data, FLAG_END, 1, &[]));
    assert!(c.is_open());
    assert_eq!(c.buffered(), 0);
    let out = output(&mut c);
    assert_eq!(out.len(), 1, "the connection window is granted back");
    assert_eq!(out[0].call, CallId::CONNECTION);
}

/// An initiator whose handshake is done, with one call (no body) sent.
fn initiator_with_a_call() -> (Conn, CallId) {
    let mut a = Conn::new(Role::Initiator, limits(), None);
    feed(
        &mut a,
        frame_bytes(FrameType::Hello, 0, 0, HELLO.as_bytes()),
    );
    let id = a
        .start_request("GET", "/", &HeaderMap::new(), true)
        .unwrap();
    a.take_output();
    (a, id)
}

#[test]
fn data_before_response_and_a_second_response_are_violations() {
    let (mut a, id) = initiator_with_a_call();
    feed(&mut a, frame_bytes(FrameType::Data, 0, id.get(), b"x"));
    assert!(goaway_of(&output(&mut a)).2.contains("before RESPONSE"));

    let (mut a, id) = initiator_with_a_call();
    let mut p = BytesMut::new();
    p.put_u16(200);
    p.put_u16(0);
    feed(&mut a, frame_bytes(FrameType::Response, 0, id.get(), &p));
    feed(&mut a, frame_bytes(FrameType::Response, 0, id.get(), &p));
    assert!(goaway_of(&output(&mut a)).2.contains("second RESPONSE"));
}

#[test]
fn cancel_and_goaway() {
    let mut c = acceptor_with(HELLO);
    feed(&mut c, request(1, true));
    feed(&mut c, frame_bytes(FrameType::Cancel, 0, 1, b""));
    assert!(events(&mut c).contains(&Event::Cancel { call: cid(1) }));
    assert!(
        c.send_response(cid(1), 200, &HeaderMap::new(), true)
            .is_err()
    );

    c.go_away("bye");
    feed(&mut c, request(3, true));
    let out = output(&mut c);
    assert_eq!(goaway_of(&out).0, 1);
    let reset = out.iter().find(|f| f.ty == FrameType::Reset).unwrap();
    assert_eq!(Reset::decode(&reset.payload).unwrap().status, 503);

    feed(
        &mut c,
        frame_bytes(
            FrameType::GoAway,
            0,
            0,
            &GoAway::encode(CallId::CONNECTION, goaway::NORMAL, "later"),
        ),
    );
    assert_eq!(c.peer_going_away(), Some("later"));
    assert!(matches!(
        c.start_request("GET", "/", &HeaderMap::new(), true),
        Err(SendError::GoingAway(_))
    ));
    c.handle_eof(None);
    assert_eq!(c.closed_reason(), Some("the peer went away: later"));
}

proptest::proptest! {
    /// Whatever a peer sends after its HELLO, the core never panics, never holds more output
    /// than its bound plus one frame, and either stays open or has said GOAWAY.
    #[test]
    fn arbitrary_input_never_panics_and_stays_bounded(
        frames in proptest::collection::vec(
            (1u8..=0x0b, 0u8..2, 0u32..12, proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)),
            0..64,
        ),
        junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
    ) {
        let mut c = acceptor_with(HELLO);
        let mut buf = BytesMut::new();
        for (ty, flags, call, payload) in &frames {
            buf.extend_from_slice(&frame_bytes(FrameType::from_u8(*ty).unwrap(), *flags, *call, payload));
        }
        buf.extend_from_slice(&junk);
        c.handle_input(&mut buf);
        while let Some(ev) = c.poll_event() {
            if let Event::Data { call, data, .. } = ev {
                c.consume(call, data.len());
            }
        }
        proptest::prop_assert!(c.pending_output() < OUTPUT_HIGH + (1 << 20));
        if c.closed_reason().is_some() {
            // Input alone closes a connection only for a violation, which is always said.
            let out = output(&mut c);
            proptest::prop_assert!(out.iter().any(|f| f.ty == FrameType::GoAway));
        }
    }
}
