//! The decisions of PROTOCOL.md revision 1.1 (its section 15), one test each, against a
//! running connection spoken to as bytes: calls, windows, deadlines and refusals here; frames,
//! headers and the HELLO in `frames`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use rrssh::client::{CallExt, Error};
use rrssh::connection::ConnectionConfig;
use rrssh::proto::Role;
use rrssh::routing::{get, post, stream};
use rrssh::{Body, Bytes, Deadline, HeaderMap, JsonStream, Router, StatusCode};

mod frames;

use super::raw::{HELLO, Raw, frame, goaway, header_block, request, request_with, response};

static RUNS: AtomicUsize = AtomicUsize::new(0);

pub(super) fn app() -> Router {
    Router::new()
        .route("/name", get(|| async { "server" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "late"
            }),
        )
        .route(
            "/upload",
            post(|b: Bytes| async move { b.len().to_string() }),
        )
        .route(
            "/early",
            post(|| async { (StatusCode::PAYLOAD_TOO_LARGE, "too large") }),
        )
        .route(
            "/header",
            get(|h: HeaderMap| async move {
                h.get("x-thing")
                    .map(|v| v.to_str().unwrap_or_default().to_owned())
                    .unwrap_or_default()
            }),
        )
        .route(
            "/left",
            get(|d: Deadline| async move {
                d.remaining()
                    .map_or("none".to_owned(), |l| l.as_millis().to_string())
            }),
        )
        .route(
            "/run",
            get(|| async {
                RUNS.fetch_add(1, Ordering::SeqCst);
                "ran"
            }),
        )
        .route(
            "/items",
            stream(|| async {
                JsonStream::new(futures_util::stream::iter(0..1000u32).then(|i| async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    i
                }))
            }),
        )
}

/// A connection served by [`app`], after our HELLO.
pub(super) async fn served() -> Raw<tokio::io::DuplexStream> {
    Raw::serving(app()).await
}

/// A connection served by [`app`], after `first` (a HELLO and what follows it).
pub(super) async fn served_after(first: &[u8]) -> Raw<tokio::io::DuplexStream> {
    Raw::start(ConnectionConfig::new(Role::Acceptor).serve(app()), first).await
}

/// One call answered 200 with `body`: the connection still works.
pub(super) async fn still_answers<IO>(raw: &mut Raw<IO>, call: u32)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    raw.send(&request(call, "GET", "/name", true)).await;
    let head = raw.on_call(call).await;
    assert_eq!((head.ty, head.status()), (3, 200), "{head:?}");
    let body = raw.on_call(call).await;
    assert_eq!(body.payload, b"server");
}

pub(super) fn with_hello(hello: &str, more: &[Vec<u8>]) -> Vec<u8> {
    let mut b = frame(1, 0, 0, hello.as_bytes());
    for m in more {
        b.extend_from_slice(m);
    }
    b
}

/// A HELLO frame of a peer with a 64 KiB window, with `more` (`"name":value`) added.
pub(super) fn hello_with(more: &str) -> Vec<u8> {
    let json =
        format!(r#"{{"version":1,"max_frame":1048576,"window":65536,"max_calls":8,{more}}}"#);
    frame(1, 0, 0, json.as_bytes())
}

/// The GOAWAY code an acceptor answers these bytes with.
pub(super) async fn goaway_for(bytes: Vec<u8>) -> (u16, String) {
    served_after(&bytes).await.goaway().await
}

#[tokio::test]
async fn frames_for_a_call_that_is_over_are_ignored_and_their_data_credited() {
    let mut config = ConnectionConfig::new(Role::Acceptor).serve(app());
    config.limits.connection_window = 1000;
    let mut raw = Raw::start(config, &frame(1, 0, 0, HELLO.as_bytes())).await;
    still_answers(&mut raw, 1).await;
    // Call 1 is over: every frame for it is ignored, its DATA given back at once. Twice
    // 900 bytes is past the connection window of 1000 unless the first 900 were credited.
    raw.send(&frame(4, 0, 1, &[1; 900])).await;
    raw.send(&frame(7, 0, 1, &100u32.to_be_bytes())).await;
    raw.send(&frame(6, 0, 1, b"")).await;
    raw.send(&frame(8, 1, 1, &[0, 200])).await;
    raw.send(&frame(4, 1, 1, &[1; 900])).await;
    // Call 1 was started by us; call 2 would be the Rust end's, never started.
    let grant = raw.frame().await.unwrap();
    assert_eq!(
        (grant.ty, grant.call),
        (7, 0),
        "the connection window is given back: {grant:?}"
    );
    still_answers(&mut raw, 3).await;
    raw.send(&frame(4, 0, 2, b"x")).await;
    let (code, msg) = raw.goaway().await;
    assert_eq!(code, 1, "{msg}");
    assert!(msg.contains("never started"), "{msg}");
}

#[tokio::test]
async fn data_after_the_end_of_a_body_whose_call_is_open_is_a_violation() {
    let mut raw = served().await;
    // The request body ended, the answer is not sent yet (the handler sleeps): the call is
    // still in the table, so more DATA breaks the protocol.
    raw.send(&request(1, "GET", "/slow", false)).await;
    raw.send(&frame(4, 1, 1, b"")).await;
    raw.send(&frame(4, 0, 1, b"more")).await;
    let (code, msg) = raw.goaway().await;
    assert_eq!(code, 1);
    assert!(msg.contains("after the end"), "{msg}");
}

/// Echoes the request body as the answer's body, as it arrives.
fn echo() -> impl tower::Service<
    rrssh::Request,
    Response = rrssh::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
+ Send
+ Sync
+ 'static {
    tower::service_fn(|req: rrssh::Request| async move {
        Ok::<_, std::convert::Infallible>(rrssh::Response::new(Body::new(req.into_body())))
    })
}

#[tokio::test]
async fn an_answer_head_does_not_end_the_call_its_end_does() {
    let mut raw = Raw::serving(echo()).await;
    raw.send(&request(1, "POST", "/", false)).await;
    raw.send(&frame(4, 0, 1, b"first")).await;
    let head = raw.on_call(1).await;
    assert_eq!((head.ty, head.status(), head.end()), (3, 200, false));
    assert_eq!(raw.on_call(1).await.payload, b"first");
    // The head went out; the request body goes on, and so does the answer.
    raw.send(&frame(4, 0, 1, b"second")).await;
    assert_eq!(raw.on_call(1).await.payload, b"second");
    raw.send(&frame(4, 1, 1, b"")).await;
    let last = raw.on_call(1).await;
    assert!(last.ty == 4 && last.end(), "{last:?}");
    still_answers_echo(&mut raw, 3).await;
}

async fn still_answers_echo(raw: &mut Raw<tokio::io::DuplexStream>, call: u32) {
    raw.send(&request(call, "POST", "/", false)).await;
    raw.send(&frame(4, 1, call, b"x")).await;
    assert_eq!(raw.on_call(call).await.ty, 3);
}

#[tokio::test]
async fn an_answer_complete_before_the_request_body_ends_the_call() {
    let mut config = ConnectionConfig::new(Role::Acceptor).serve(app());
    config.limits.connection_window = 1500;
    let mut raw = Raw::start(config, &frame(1, 0, 0, HELLO.as_bytes())).await;
    raw.send(&request(1, "POST", "/early", false)).await;
    raw.send(&frame(4, 0, 1, &[0; 100])).await;
    let head = raw.on_call(1).await;
    assert_eq!(head.status(), 413);
    let body = raw.on_call(1).await;
    assert!(body.end(), "the answer is complete");
    // The rest of the body is dropped and credited: 3 × 1000 bytes pass a window of 1500.
    for _ in 0..3 {
        raw.send(&frame(4, 0, 1, &[0; 1000])).await;
    }
    still_answers(&mut raw, 3).await;

    // A Rust caller stops sending an upload whose answer is complete, and sends no CANCEL.
    let (a, _b) = super::pair(Router::new(), app()).await;
    let endless = futures_util::stream::repeat_with(|| {
        Ok::<_, std::io::Error>(http_body::Frame::data(Bytes::from_static(&[0; 4096])))
    });
    let mut req = a.post("/early").build().unwrap();
    *req.body_mut() = Body::new(http_body_util::StreamBody::new(endless));
    let res = tower::ServiceExt::oneshot(a.clone(), req).await.unwrap();
    assert_eq!(res.status(), 413);
    drop(res);
    assert!(
        super::super::ssh::eventually(Duration::from_secs(5), || a.calls_in_flight() == 0).await
    );
}

#[tokio::test]
async fn the_protocols_refusals_are_resets() {
    let mut config = ConnectionConfig::new(Role::Acceptor).serve(app());
    config.limits.max_concurrent_calls = 1;
    config.limits.max_head = 200;
    let mut raw = Raw::start(config, &frame(1, 0, 0, HELLO.as_bytes())).await;
    let refused = async |raw: &mut Raw<_>, bytes: Vec<u8>, status: u16| {
        let call = u32::from_be_bytes(bytes[6..10].try_into().unwrap());
        raw.send(&bytes).await;
        let f = raw.on_call(call).await;
        assert_eq!((f.ty, f.status()), (8, status), "{}", f.message());
    };
    // While call 1 holds the one slot: 429; a head over the limit: 431.
    raw.send(&request(1, "GET", "/slow", true)).await;
    refused(&mut raw, request(3, "GET", "/name", true), 429).await;
    refused(
        &mut raw,
        request(5, "GET", &format!("/{}", "x".repeat(300)), true),
        431,
    )
    .await;
    raw.send(&frame(6, 0, 1, b"")).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    // A malformed head, a malformed budget: 400.
    refused(&mut raw, request(7, "G T", "/name", true), 400).await;
    let bad_budget = request_with(9, "GET", "/name", &[(b"rrssh-timeout", b"soon")], true);
    refused(&mut raw, bad_budget, 400).await;
    // A budget of 0: RESET 504, and the handler never ran.
    let before = RUNS.load(Ordering::SeqCst);
    raw.send(&request_with(
        11,
        "GET",
        "/run",
        &[(b"rrssh-timeout", b"0")],
        true,
    ))
    .await;
    let f = raw.on_call(11).await;
    assert_eq!((f.ty, f.status()), (8, 504), "{}", f.message());
    assert_eq!(RUNS.load(Ordering::SeqCst), before);
    // After our GOAWAY: RESET 503.
    raw.conn.as_ref().unwrap().go_away("draining");
    assert_eq!(raw.frame().await.unwrap().ty, 0x0b);
    raw.send(&request(13, "GET", "/name", true)).await;
    let f = raw.on_call(13).await;
    assert_eq!((f.ty, f.status()), (8, 503), "{}", f.message());
}

/// The three ways a budget runs out, on any carrier: before the head, during an upload that
/// stalls before the answer, during a stream.
pub(crate) async fn budget_runs_out<IO>(raw: &mut Raw<IO>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let t = (&b"rrssh-timeout"[..], &b"100"[..]);
    raw.send(&request_with(1, "GET", "/slow", &[t], true)).await;
    let f = raw.on_call(1).await;
    assert_eq!(
        (f.ty, f.status()),
        (8, 504),
        "RESET 504, not a RESPONSE: {f:?}"
    );
    assert!(f.message().contains("deadline"), "{}", f.message());
    raw.send(&request_with(3, "POST", "/upload", &[t], false))
        .await;
    raw.send(&frame(4, 0, 3, b"part of it")).await;
    let f = raw.on_call(3).await;
    assert_eq!((f.ty, f.status()), (8, 504), "{f:?}");
    raw.send(&request_with(5, "STREAM", "/items", &[t], true))
        .await;
    assert_eq!(raw.on_call(5).await.ty, 3);
    let end = loop {
        let f = raw.on_call(5).await;
        if f.ty != 4 {
            break f;
        }
    };
    assert_eq!(end.ty, 5, "an END frame: {end:?}");
    let text = String::from_utf8_lossy(&end.payload).into_owned();
    assert!(
        text.contains("rrssh-end") && text.contains("error") && text.contains("504"),
        "{text}"
    );
}

#[tokio::test]
async fn a_handler_over_its_budget_is_reset_504() {
    let mut raw = served().await;
    budget_runs_out(&mut raw).await;
    // Over plain TCP too: a `Server` bound with `bind_tcp`, spoken to as bytes.
    let keys = super::super::ssh::Keys::new();
    let hub = super::super::ssh::server_builder(&keys)
        .router(app())
        .bind_tcp("127.0.0.1:0")
        .await
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(hub.local_addr())
        .await
        .unwrap();
    let mut raw = Raw {
        io: tcp,
        conn: None,
        hello: serde_json::Value::Null,
    };
    raw.send(&frame(1, 0, 0, HELLO.as_bytes())).await;
    assert_eq!(raw.frame().await.unwrap().ty, 1);
    budget_runs_out(&mut raw).await;
}

#[tokio::test]
async fn grants_follow_the_receivers_own_windows() {
    // The Rust end is the initiator and receives a body; the raw end serves it. The Rust end
    // announced window 65,536 and conn_window 131,072, and grants against those (a quarter of
    // each at a time), whatever the raw end announced.
    let mut config = ConnectionConfig::new(Role::Initiator);
    config.limits.initial_window = 65_536;
    config.limits.connection_window = 131_072;
    let raw_hello =
        r#"{"version":1,"max_frame":1048576,"window":4096,"max_calls":8,"conn_window":20000}"#;
    let mut raw = Raw::start(config, &frame(1, 0, 0, raw_hello.as_bytes())).await;
    let conn = raw.conn.clone().unwrap();
    let call = tokio::spawn(async move {
        let res = conn.get("/file").send().await.unwrap();
        let mut body = res.into_body();
        let mut got = 0;
        while let Some(f) = body.frame().await {
            got += f.unwrap().into_data().map_or(0, |d| d.len());
        }
        got
    });
    let req = raw.frame().await.unwrap();
    assert_eq!((req.ty, req.call), (2, 1));
    raw.send(&response(
        1,
        200,
        &[(b"content-type", b"application/octet-stream")],
        false,
    ))
    .await;
    raw.send(&frame(4, 0, 1, &[7; 16_384])).await;
    let w = raw.frame().await.unwrap();
    assert_eq!(
        (w.ty, w.call, w.payload.clone()),
        (7, 1, 16_384u32.to_be_bytes().to_vec())
    );
    raw.send(&frame(4, 0, 1, &[7; 16_384])).await;
    let mut grants = [raw.frame().await.unwrap(), raw.frame().await.unwrap()];
    grants.sort_by_key(|f| std::cmp::Reverse(f.call));
    assert_eq!((grants[0].ty, grants[0].call), (7, 1));
    assert_eq!(grants[0].payload, 16_384u32.to_be_bytes());
    assert_eq!((grants[1].ty, grants[1].call), (7, 0));
    assert_eq!(grants[1].payload, 32_768u32.to_be_bytes());
    raw.send(&frame(4, 1, 1, b"")).await;
    assert_eq!(call.await.unwrap(), 32_768);
}

#[tokio::test]
async fn a_peer_that_does_not_read_gets_goaway_7() {
    // A carrier with little room: the Rust end's answers (PONGs) stop fitting as soon as the
    // raw end stops reading, and it keeps sending PINGs.
    let (io, end) = tokio::io::duplex(16 * 1024);
    let rust = tokio::spawn(rrssh::connection::Connection::start(
        end,
        ConnectionConfig::new(Role::Acceptor),
    ));
    let (mut rd, mut wr) = tokio::io::split(io);
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    wr.write_all(&frame(1, 0, 0, HELLO.as_bytes()))
        .await
        .unwrap();
    let mut hello_len = [0u8; 4];
    rd.read_exact(&mut hello_len).await.unwrap();
    let conn = rust.await.unwrap().unwrap();
    let ping = frame(9, 0, 0, &[0; 64]);
    let writer = tokio::spawn(async move {
        for _ in 0..40_000 {
            if wr.write_all(&ping).await.is_err() {
                break;
            }
        }
    });
    let reason = tokio::time::timeout(Duration::from_secs(10), conn.closed())
        .await
        .expect("the connection closes");
    assert!(reason.contains("not reading"), "{reason}");
    // Reading now, the peer finds the GOAWAY that says why.
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), rd.read_to_end(&mut rest)).await;
    let code = super::raw::goaway_code_in(&rest[u32::from_be_bytes(hello_len) as usize..]);
    assert_eq!(code, Some(7));
    writer.abort();
}

#[tokio::test]
async fn a_peer_with_max_calls_0_is_sent_no_calls() {
    let caller_only =
        r#"{"version":1,"max_frame":1048576,"window":65536,"max_calls":0,"conn_window":65536}"#;
    let mut raw = served_after(&frame(1, 0, 0, caller_only.as_bytes())).await;
    let conn = raw.conn.clone().unwrap();
    match conn.get("/anything").send().await {
        Err(Error::Unavailable(why)) => assert!(why.contains("takes no calls"), "{why}"),
        other => panic!("expected a local failure, got {other:?}"),
    }
    // It still calls: its call is answered, and no REQUEST ever came to it.
    raw.send(&request(1, "GET", "/name", true)).await;
    let head = raw.frame().await.unwrap();
    assert_eq!(
        (head.ty, head.call),
        (3, 1),
        "the answer, not a REQUEST: {head:?}"
    );
}

#[tokio::test]
async fn timeout_spellings() {
    let mut raw = served().await;
    let mut call = 1;
    for bad in [
        &b"+5"[..],
        b" 5",
        b"5 ",
        b"1e3",
        b"",
        b"5ms",
        b"-1",
        b"0x10",
        b"123456789012345678901",
    ] {
        raw.send(&request_with(
            call,
            "GET",
            "/left",
            &[(b"rrssh-timeout", bad)],
            true,
        ))
        .await;
        let f = raw.on_call(call).await;
        assert_eq!(
            (f.ty, f.status()),
            (8, 400),
            "{:?}: {}",
            String::from_utf8_lossy(bad),
            f.message()
        );
        call += 2;
    }
    for (good, at_most, at_least) in [
        (&b"0050"[..], 50, 0),
        (b"18446744073709551616", 1 << 40, (1 << 40) - 10_000),
        (b"99999999999999999999", 1 << 40, (1 << 40) - 10_000),
    ] {
        raw.send(&request_with(
            call,
            "GET",
            "/left",
            &[(b"rrssh-timeout", good)],
            true,
        ))
        .await;
        assert_eq!(raw.on_call(call).await.status(), 200);
        let left: u64 = String::from_utf8_lossy(&raw.on_call(call).await.payload)
            .parse()
            .unwrap();
        assert!(
            (at_least..=at_most).contains(&left),
            "{left} ms left for {:?}",
            String::from_utf8_lossy(good)
        );
        call += 2;
    }
    raw.send(&request_with(
        call,
        "GET",
        "/run",
        &[(b"rrssh-timeout", b"0")],
        true,
    ))
    .await;
    assert_eq!(raw.on_call(call).await.status(), 504);
}

#[tokio::test]
async fn a_stream_error_after_a_partial_item_reports_the_error() {
    let mut raw = Raw::start(
        ConnectionConfig::new(Role::Initiator),
        &frame(1, 0, 0, HELLO.as_bytes()),
    )
    .await;
    let conn = raw.conn.clone().unwrap();
    let reader = tokio::spawn(async move {
        let mut s = conn.stream("/s").items::<u32>().await.unwrap();
        let mut got = Vec::new();
        while let Some(item) = s.next().await {
            got.push(item.map_err(|e| e.to_string()));
        }
        got
    });
    assert_eq!(raw.frame().await.unwrap().ty, 2);
    let error = br#"{"error":{"status":500,"message":"the producer failed"}}"#;
    raw.send(
        &[
            response(1, 200, &[(b"content-type", b"application/x-ndjson")], false),
            frame(4, 0, 1, b"1\n2\n{\"par"),
            frame(
                5,
                1,
                1,
                &header_block(&[(b"rrssh-end", b"error"), (b"rrssh-error", error)]),
            ),
        ]
        .concat(),
    )
    .await;
    let got = reader.await.unwrap();
    assert_eq!(got[..2], [Ok(1), Ok(2)]);
    assert_eq!(got.len(), 3, "{got:?}");
    let err = got[2].clone().unwrap_err();
    assert!(
        err.contains("the producer failed"),
        "the stream's error, not a decoding one: {err}"
    );
}

#[tokio::test]
async fn a_peer_may_call_after_its_own_goaway() {
    let mut raw = served().await;
    raw.send(&goaway(0, "leaving soon")).await;
    still_answers(&mut raw, 1).await;
    still_answers(&mut raw, 3).await;
    // Its GOAWAY binds what it accepts: the Rust end starts no call to it.
    let conn = raw.conn.clone().unwrap();
    assert!(matches!(
        conn.get("/x").send().await,
        Err(Error::Unavailable(_))
    ));
}
