//! The wire protocol over an in-memory pipe: both ends serve and call on one carrier.

use std::time::Duration;

use futures_util::StreamExt;
use rrssh::client::{CallExt, Error};
use rrssh::connection::{Connection, ConnectionConfig};
use rrssh::proto::Role;
use rrssh::routing::{get, post, stream};
use rrssh::{Bytes, JsonStream, Path, Router};

pub(crate) async fn pair(a: Router, b: Router) -> (Connection, Connection) {
    let (x, y) = tokio::io::duplex(64 * 1024);
    let ca = ConnectionConfig::new(Role::Initiator).serve(a);
    let cb = ConnectionConfig::new(Role::Acceptor).serve(b);
    let (l, r) = tokio::join!(Connection::start(x, ca), Connection::start(y, cb));
    (l.unwrap(), r.unwrap())
}

fn app(name: &'static str) -> Router {
    Router::new()
        .route("/name", get(move || async move { name }))
        .route("/echo", post(|b: Bytes| async move { b }))
        .route(
            "/count/{n}",
            stream(|Path(n): Path<u32>| async move {
                JsonStream::new(futures_util::stream::iter(0..n))
            }),
        )
        .route(
            "/sleep/{ms}",
            get(|Path(ms): Path<u64>| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                ms.to_string()
            }),
        )
}

#[tokio::test]
async fn both_ends_serve_and_call_on_one_carrier() {
    let (a, b) = pair(app("a"), app("b")).await;
    assert_eq!(a.get("/name").receive_text().await.unwrap(), "b");
    assert_eq!(b.get("/name").receive_text().await.unwrap(), "a");
}

#[tokio::test]
async fn many_calls_in_flight_answered_out_of_order() {
    let (a, _b) = pair(app("a"), app("b")).await;
    let calls = (0..64u64).map(|i| {
        let a = a.clone();
        async move {
            (
                i,
                a.get(&format!("/sleep/{}", (64 - i) % 7))
                    .receive_text()
                    .await
                    .unwrap(),
            )
        }
    });
    for (i, got) in futures_util::future::join_all(calls).await {
        assert_eq!(got, ((64 - i) % 7).to_string());
    }
}

#[tokio::test]
async fn large_bodies_are_chunked_within_the_window() {
    let (a, _b) = pair(app("a"), app("b")).await;
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let back = a.post("/echo").body(big.clone()).send().await.unwrap();
    let body = http_body_util::BodyExt::collect(back.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(body.len(), big.len());
    assert!(body[..] == big[..]);
}

#[tokio::test]
async fn streams_end_with_their_marker() {
    let (a, _b) = pair(app("a"), app("b")).await;
    let items: Vec<u32> = a
        .stream("/count/5000")
        .items::<u32>()
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(items, (0..5000).collect::<Vec<_>>());
}

#[tokio::test]
async fn closed_connection_fails_calls_with_unavailable() {
    let (a, b) = pair(app("a"), app("b")).await;
    let pending = tokio::spawn({
        let a = a.clone();
        async move { a.get("/sleep/5000").send().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    b.close("test over");
    match tokio::time::timeout(Duration::from_secs(2), pending)
        .await
        .unwrap()
        .unwrap()
    {
        Err(Error::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(matches!(
        a.get("/name").send().await,
        Err(Error::Unavailable(_))
    ));
}

/// Speaks PROTOCOL.md's worked example as raw bytes, as a client in another language would.
#[tokio::test]
async fn raw_bytes_client_matches_the_worked_example() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    fn unhex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }
    let (mut raw, server_end) = tokio::io::duplex(64 * 1024);
    let hello: Router = Router::new().route(
        "/hello",
        get(|| async { rrssh::Json(serde_json::json!({"msg": "Hello World!"})) }),
    );
    let cfg = ConnectionConfig::new(Role::Acceptor).serve(hello);
    let server = tokio::spawn(Connection::start(server_end, cfg));

    let hello_json = br#"{"version":1,"max_frame":1048576,"window":262144,"max_calls":1024}"#;
    let mut out = Vec::new();
    out.extend_from_slice(&((6 + hello_json.len()) as u32).to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00, 0, 0, 0, 0]);
    out.extend_from_slice(hello_json);
    out.extend(unhex(
        "00 00 00 29 02 01 00 00 00 01 03 47 45 54 00 06 2f 68 65 6c 6c 6f 00 01 00 0d 72 72 73 73 68 2d 74 69 6d 65 6f 75 74 00 04 35 30 30 30",
    ));
    raw.write_all(&out).await.unwrap();
    let _conn = server.await.unwrap().unwrap();

    // The server's HELLO, then the answer.
    let mut len = [0u8; 4];
    raw.read_exact(&mut len).await.unwrap();
    let mut server_hello = vec![0u8; u32::from_be_bytes(len) as usize];
    raw.read_exact(&mut server_hello).await.unwrap();
    assert_eq!(server_hello[0], 0x01);
    let parsed: serde_json::Value = serde_json::from_slice(&server_hello[6..]).unwrap();
    assert_eq!(parsed["version"], 1);
    let expected = unhex(
        "00 00 00 2a 03 00 00 00 00 01 00 c8 00 01 00 0c 63 6f 6e 74 65 6e 74 2d 74 79 70 65 00 10 61 70 70 6c 69 63 61 74 69 6f 6e 2f 6a 73 6f 6e 00 00 00 1c 04 01 00 00 00 01 7b 22 6d 73 67 22 3a 22 48 65 6c 6c 6f 20 57 6f 72 6c 64 21 22 7d",
    );
    let mut got = vec![0u8; expected.len()];
    raw.read_exact(&mut got).await.unwrap();
    assert_eq!(got, expected);
}

/// A frame over the limit gets GOAWAY and a close, and the peer's calls fail as unavailable.
#[tokio::test]
async fn oversized_frame_gets_goaway_and_close() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut raw, server_end) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(Connection::start(
        server_end,
        ConnectionConfig::new(Role::Acceptor),
    ));
    let hello = br#"{"version":1,"max_frame":1048576,"window":262144,"max_calls":1024}"#;
    let mut out = ((6 + hello.len()) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&[1, 0, 0, 0, 0, 0]);
    out.extend_from_slice(hello);
    // A DATA frame claiming 2 GiB.
    out.extend_from_slice(&[0x80, 0, 0, 0, 0x04, 0, 0, 0, 0, 1]);
    raw.write_all(&out).await.unwrap();
    let conn = server.await.unwrap().unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), raw.read_to_end(&mut rest))
        .await
        .unwrap();
    // Skip the server's HELLO, then expect GOAWAY with code 2 (frame too large).
    let hello_len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize + 4;
    let goaway = &rest[hello_len..];
    assert_eq!(goaway[4], 0x0b, "GOAWAY");
    assert_eq!(u16::from_be_bytes([goaway[14], goaway[15]]), 2);
    assert!(String::from_utf8_lossy(&goaway[16..]).contains("over the limit"));
    assert!(conn.closed_reason().unwrap().contains("protocol violation"));
}

/// One call over the concurrency limit gets 429 and one head over the limit gets 431; calls
/// already in flight are unaffected and the connection keeps working.
#[tokio::test]
async fn over_the_limits_calls_are_refused_and_others_continue() {
    let (x, y) = tokio::io::duplex(64 * 1024);
    let ca = ConnectionConfig::new(Role::Initiator);
    let mut cb = ConnectionConfig::new(Role::Acceptor).serve(app("b"));
    cb.limits.max_concurrent_calls = 2;
    cb.limits.max_head = 1024;
    let (a, _b) = tokio::join!(Connection::start(x, ca), Connection::start(y, cb));
    let a = a.unwrap();

    let slow = |a: &Connection| {
        let a = a.clone();
        tokio::spawn(async move { a.get("/sleep/300").receive_text().await })
    };
    let (s1, s2) = (slow(&a), slow(&a));
    tokio::time::sleep(Duration::from_millis(50)).await;
    match a.get("/name").receive_text().await {
        Err(Error::Status { status, body }) => {
            assert_eq!(status, 429);
            println!("third call: {}", body.message);
        }
        other => panic!("expected 429, got {other:?}"),
    }
    let long = format!("/name?pad={}", "x".repeat(2000));
    match a.get(&long).receive_text().await {
        Err(Error::Status { status, .. }) => assert_eq!(status, 431),
        other => panic!("expected 431, got {other:?}"),
    }
    assert_eq!(s1.await.unwrap().unwrap(), "300");
    assert_eq!(s2.await.unwrap().unwrap(), "300");
    assert_eq!(a.get("/name").receive_text().await.unwrap(), "b");
}
mod decisions;
mod engine;
mod interleavings;
pub(crate) mod raw;
pub(crate) mod rules;
