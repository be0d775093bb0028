//! Every rule a receiver must check (PROTOCOL.md §2–§8), against a running connection: a raw
//! peer sends one fault and reads the `GOAWAY` that names it.

use std::time::Duration;

use rrssh::client::CallExt;
use rrssh::connection::{Connection, ConnectionConfig};
use rrssh::proto::Role;
use rrssh::routing::stream;
use rrssh::{JsonStream, Router};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HELLO: &str =
    r#"{"version":1,"max_frame":1048576,"window":1048576,"max_calls":8,"conn_window":16777216}"#;

/// One frame, encoded by hand as PROTOCOL.md §2 says.
pub(crate) fn frame(ty: u8, flags: u8, call: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = ((6 + payload.len()) as u32).to_be_bytes().to_vec();
    b.push(ty);
    b.push(flags);
    b.extend_from_slice(&call.to_be_bytes());
    b.extend_from_slice(payload);
    b
}

fn get(call: u32) -> Vec<u8> {
    let mut p = vec![3];
    p.extend_from_slice(b"GET");
    p.extend_from_slice(&2u16.to_be_bytes());
    p.extend_from_slice(b"/x");
    p.extend_from_slice(&0u16.to_be_bytes());
    frame(2, 1, call, &p)
}

/// Sends `bytes` to a fresh acceptor and returns `last_call`, the code and the message of the
/// `GOAWAY` it answers with before closing.
async fn goaway_of(bytes: Vec<u8>) -> (u32, u16, String) {
    goaway_from(ConnectionConfig::new(Role::Acceptor), bytes).await
}

/// [`goaway_of`] against an acceptor with this configuration.
async fn goaway_from(config: ConnectionConfig, bytes: Vec<u8>) -> (u32, u16, String) {
    let (mut raw, end) = tokio::io::duplex(4 << 20);
    let server = tokio::spawn(Connection::start(end, config));
    raw.write_all(&bytes).await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut rest))
        .await
        .expect("the connection closes")
        .unwrap();
    let _ = server.await;
    let mut at = 0;
    while at + 10 <= rest.len() {
        let len = u32::from_be_bytes(rest[at..at + 4].try_into().unwrap()) as usize;
        let f = &rest[at..at + 4 + len];
        if f[4] == 0x0b {
            let last = u32::from_be_bytes(f[10..14].try_into().unwrap());
            let code = u16::from_be_bytes([f[14], f[15]]);
            return (last, code, String::from_utf8_lossy(&f[16..]).into_owned());
        }
        at += 4 + len;
    }
    panic!("no GOAWAY in {rest:?}");
}

fn hello() -> Vec<u8> {
    frame(1, 0, 0, HELLO.as_bytes())
}

#[tokio::test]
async fn each_broken_rule_gets_its_goaway() {
    let with_hello = |more: Vec<Vec<u8>>| {
        let mut b = hello();
        for m in more {
            b.extend(m);
        }
        b
    };
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "non-JSON HELLO",
            frame(1, 0, 0, b"{nope"),
            1,
            "malformed HELLO",
        ),
        (
            "HELLO missing fields",
            frame(1, 0, 0, br#"{"version":1}"#),
            1,
            "malformed HELLO",
        ),
        (
            "another version",
            frame(
                1,
                0,
                0,
                br#"{"version":9,"max_frame":1048576,"window":1,"max_calls":1}"#,
            ),
            3,
            "version 9",
        ),
        (
            "window 0",
            frame(
                1,
                0,
                0,
                br#"{"version":1,"max_frame":1048576,"window":0,"max_calls":1}"#,
            ),
            1,
            "window 0",
        ),
        ("first frame not HELLO", get(1), 1, "not HELLO"),
        (
            "oversized HELLO",
            vec![0x7f, 0, 0, 0, 1, 0],
            2,
            "over the limit",
        ),
        ("second HELLO", with_hello(vec![hello()]), 1, "second HELLO"),
        (
            "reserved flags",
            with_hello(vec![frame(9, 0x40, 0, b"")]),
            1,
            "reserved",
        ),
        (
            "PING on a call",
            with_hello(vec![frame(9, 0, 1, b"")]),
            1,
            "call 0",
        ),
        (
            "PING over 64 bytes",
            with_hello(vec![frame(9, 0, 0, &[0; 65])]),
            1,
            "PING",
        ),
        (
            "REQUEST of the wrong parity",
            with_hello(vec![get(2)]),
            1,
            "parity",
        ),
        (
            "duplicate call id",
            with_hello(vec![get(3), get(3)]),
            1,
            "not above",
        ),
        (
            "decreasing call id",
            with_hello(vec![get(5), get(3)]),
            1,
            "not above",
        ),
        (
            "DATA for a call never started",
            with_hello(vec![frame(4, 0, 7, b"x")]),
            1,
            "never started",
        ),
        (
            "DATA after END",
            with_hello(vec![get(1), frame(4, 0, 1, b"x")]),
            1,
            "after the end",
        ),
        (
            "WINDOW of 0",
            with_hello(vec![frame(7, 0, 0, &0u32.to_be_bytes())]),
            1,
            "increment of 0",
        ),
        (
            "WINDOW past 2^31-1",
            with_hello(vec![frame(7, 0, 0, &0x7fff_ffffu32.to_be_bytes())]),
            6,
            "2^31-1",
        ),
        (
            "unknown type",
            with_hello(vec![frame(0x42, 0, 0, b"")]),
            1,
            "unknown frame type",
        ),
        (
            "max_frame under 16 KiB",
            frame(1, 0, 0, br#"{"version":1,"max_frame":1024,"window":1,"max_calls":1}"#),
            1,
            "max_frame 1024",
        ),
        (
            "conn_window of 0",
            frame(
                1,
                0,
                0,
                br#"{"version":1,"max_frame":1048576,"window":1,"max_calls":1,"conn_window":0}"#,
            ),
            1,
            "conn_window 0",
        ),
        (
            "service name over 64 bytes",
            frame(
                1,
                0,
                0,
                format!(
                    r#"{{"version":1,"max_frame":1048576,"window":1,"max_calls":1,"service":"{}"}}"#,
                    "s".repeat(65)
                )
                .as_bytes(),
            ),
            1,
            "service name",
        ),
        ("DATA on call 0", with_hello(vec![frame(4, 0, 0, b"x")]), 1, "on call 0"),
        ("CANCEL for a call never started", with_hello(vec![frame(6, 0, 9, b"")]), 1, "never started"),
        (
            "RESET for a call never started",
            with_hello(vec![frame(8, 1, 9, &500u16.to_be_bytes())]),
            1,
            "never started",
        ),
        ("CANCEL for our own call id", with_hello(vec![frame(6, 0, 2, b"")]), 1, "which we started"),
        ("HELLO on a call", frame(1, 0, 5, HELLO.as_bytes()), 1, "must be call 0"),
        ("HELLO not an object", frame(1, 0, 0, b"[1,1048576,1048576,8]"), 1, "not a JSON object"),
        (
            "window not a number",
            frame(1, 0, 0, br#"{"version":1,"max_frame":1048576,"window":"1","max_calls":1}"#),
            1,
            "malformed HELLO",
        ),
        (
            "max_calls not a whole number",
            frame(1, 0, 0, br#"{"version":1,"max_frame":1048576,"window":1,"max_calls":1.5}"#),
            1,
            "malformed HELLO",
        ),
        (
            "version past 16 bits",
            frame(1, 0, 0, br#"{"version":65537,"max_frame":1048576,"window":1,"max_calls":1}"#),
            1,
            "malformed HELLO",
        ),
        (
            "window past 2^31-1",
            frame(1, 0, 0, br#"{"version":1,"max_frame":1048576,"window":2147483648,"max_calls":1}"#),
            1,
            "window 2147483648",
        ),
        (
            "service not a string",
            frame(1, 0, 0, br#"{"version":1,"max_frame":1048576,"window":1,"max_calls":1,"service":null}"#),
            1,
            "malformed HELLO",
        ),
        ("WINDOW for a call never started", with_hello(vec![frame(7, 0, 9, &1u32.to_be_bytes())]), 1, "never started"),
        ("END for a call never started", with_hello(vec![frame(5, 1, 9, &[0, 0])]), 1, "never started"),
        (
            "RESPONSE on a call the peer started",
            with_hello(vec![get(1), frame(3, 0, 1, &[0, 200, 0, 0])]),
            1,
            "which the peer started",
        ),
        ("WINDOW of 0 on a call", with_hello(vec![get(1), frame(7, 0, 1, &[0; 4])]), 1, "increment of 0"),
        ("malformed WINDOW", with_hello(vec![frame(7, 0, 0, &[0, 1])]), 1, "window"),
        ("malformed GOAWAY", with_hello(vec![frame(0x0b, 0, 0, &[0, 0, 0])]), 1, "goaway"),
        ("malformed RESET", with_hello(vec![get(1), frame(8, 1, 1, &[0])]), 1, "reset"),
        (
            "a SKIP frame over the limit",
            with_hello(vec![vec![0, 0x10, 0, 0, 0x7f, 0x80, 0, 0, 0, 0]]),
            2,
            "over the limit",
        ),
    ];
    for (name, bytes, code, says) in cases {
        eprintln!("case: {name}");
        let (_, got, msg) = goaway_of(bytes).await;
        assert_eq!(got, code, "{name}: {msg}");
        assert!(msg.contains(says), "{name}: {msg}");
    }
}

#[tokio::test]
async fn body_past_the_call_window_is_a_flow_control_violation_and_names_the_last_call() {
    let mut b = frame(
        1,
        0,
        0,
        br#"{"version":1,"max_frame":1048576,"window":1048576,"max_calls":8}"#,
    );
    let mut req = get(5);
    req[5] = 0; // a body follows
    b.extend(req);
    for _ in 0..17 {
        b.extend(frame(4, 0, 5, &[0; 64 * 1024]));
    }
    // A handler that holds the call without reading its body (a call already answered has its
    // body discarded, and credited, as it comes).
    let holds = Router::new().route(
        "/x",
        rrssh::routing::get(|body: rrssh::Body| async move {
            let _held = body;
            std::future::pending::<()>().await
        }),
    );
    let config = ConnectionConfig::new(Role::Acceptor).serve(holds);
    let (last, code, msg) = goaway_from(config, b).await;
    assert_eq!((last, code), (5, 6), "{msg}");
}

#[tokio::test]
async fn a_deadline_cuts_a_stream_and_the_caller_gets_a_timeout() {
    use futures_util::StreamExt;
    let endless = Router::new().route(
        "/ticks",
        stream(|| async {
            JsonStream::new(futures_util::stream::unfold(0u64, |n| async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Some((n, n + 1))
            }))
        }),
    );
    let (a, _b) = super::pair(Router::new(), endless).await;
    let started = std::time::Instant::now();
    let mut s = a
        .stream("/ticks")
        .timeout(Duration::from_millis(300))
        .items::<u64>()
        .await
        .unwrap();
    let mut items = 0;
    let end = loop {
        match s.next().await {
            Some(Ok(_)) => items += 1,
            Some(Err(e)) => break e,
            None => panic!("a stream cut by its deadline must not end cleanly"),
        }
    };
    assert!(
        matches!(end, rrssh::client::Error::Timeout),
        "{end:?} after {items} items"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn bodies_past_the_connection_window_are_a_flow_control_violation() {
    // 17 calls of 1 MiB each, within every call's window, past the 16 MiB connection window.
    let mut b = hello();
    let chunk = [0u8; 64 * 1024];
    for i in 0..17u32 {
        let id = 1 + 2 * i;
        let mut req = get(id);
        req[5] = 0; // a body follows
        b.extend(req);
        for _ in 0..16 {
            b.extend(frame(4, 0, id, &chunk));
        }
    }
    // A service that holds every request body without reading it: the bytes stay unconsumed.
    let holds = tower::service_fn(|req: rrssh::Request| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(req);
        Ok::<_, std::convert::Infallible>(rrssh::Response::new(rrssh::Body::empty()))
    });
    let config = ConnectionConfig::new(Role::Acceptor).serve(holds);
    let (_, code, msg) = goaway_from(config, b).await;
    assert_eq!(code, 6, "{msg}");
    assert!(msg.contains("connection window"), "{msg}");
}

#[tokio::test]
async fn a_silent_peer_gets_goaway_4_when_the_hello_timeout_passes() {
    let mut config = ConnectionConfig::new(Role::Acceptor);
    config.hello_timeout = Duration::from_millis(200);
    let (last, code, msg) = goaway_from(config, Vec::new()).await;
    assert_eq!((last, code), (0, 4), "{msg}");
}

/// The acceptor calls the raw peer; the raw peer answers with `answer` for that call (id 2).
async fn goaway_for_answer(answer: impl Fn(u32) -> Vec<u8>) -> (u32, u16, String) {
    use tokio::io::AsyncReadExt;
    let (mut raw, end) = tokio::io::duplex(1 << 20);
    raw.write_all(&hello()).await.unwrap();
    let server = Connection::start(end, ConnectionConfig::new(Role::Acceptor))
        .await
        .unwrap();
    let call = tokio::spawn({
        let server = server.clone();
        async move { server.get("/from-the-acceptor").send().await }
    });
    // Skip the acceptor's HELLO, then read its REQUEST.
    let mut got = Vec::new();
    let id = loop {
        let mut buf = [0u8; 4096];
        let n = raw.read(&mut buf).await.unwrap();
        got.extend_from_slice(&buf[..n]);
        let hello_len = 4 + u32::from_be_bytes(got[..4].try_into().unwrap()) as usize;
        if got.len() >= hello_len + 10 {
            break u32::from_be_bytes(got[hello_len + 6..hello_len + 10].try_into().unwrap());
        }
    };
    assert_eq!(id, 2, "the acceptor numbers its calls 2, 4, …");
    raw.write_all(&answer(id)).await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut rest))
        .await
        .expect("the connection closes")
        .unwrap();
    let _ = call.await;
    let at = rest.windows(2).position(|w| w == [0x0b, 0x00]).unwrap() - 4;
    let f = &rest[at..];
    (
        u32::from_be_bytes(f[10..14].try_into().unwrap()),
        u16::from_be_bytes([f[14], f[15]]),
        String::from_utf8_lossy(&f[16..]).into_owned(),
    )
}

#[tokio::test]
async fn data_before_the_response_and_a_second_response_are_violations() {
    let head = [0u8, 200, 0, 0]; // status 200, no headers
    let (_, code, msg) = goaway_for_answer(|id| frame(4, 0, id, b"x")).await;
    assert_eq!(code, 1);
    assert!(msg.contains("before RESPONSE"), "{msg}");
    let (_, code, msg) = goaway_for_answer(|id| {
        let mut b = frame(3, 0, id, &head);
        b.extend(frame(3, 0, id, &head));
        b
    })
    .await;
    assert_eq!(code, 1);
    assert!(msg.contains("second RESPONSE"), "{msg}");
}
