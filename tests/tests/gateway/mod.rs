//! The HTTP gateway on a hub: HTTP clients (hyper, and curl) call reverse services by name.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use rrssh::auth::Grants;
use rrssh::gateway::{Gateway, Tokens};
use rrssh::routing::{get, post, stream};
use rrssh::{ApiError, Hub, Json, JsonStream, Params, Path, Router};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::ssh::{Keys, client, eventually, server};

mod access;
mod client_node;
mod openapi;

const OPS: &str = "0b8e2f4a6c1d3e5f7a9b1c3d5e7f9a1b";
const DASH: &str = "6f1c0e7d9a4b43a8b2d1e5f0c3a7b9d2";

/// What an HTTP call got back: status, headers, and the body, or the error that ended it.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Result<String, String>,
}

impl Reply {
    fn text(&self) -> String {
        self.body.clone().unwrap_or_else(|e| e)
    }

    fn json(&self) -> Value {
        let text = self.body.as_ref().expect("a complete body");
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }
}

async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path);
    // The Host a client sends, unless the test names another.
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req = req.header("host", addr.to_string());
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let body = match body.collect().await {
        Ok(b) => Ok(String::from_utf8(b.to_bytes().to_vec()).unwrap()),
        Err(e) => Err(e.to_string()),
    };
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The service behind the gateway, and a channel that hears when `/slow` is cancelled.
fn service(cancelled: mpsc::UnboundedSender<()>) -> Router {
    struct OnDrop(mpsc::UnboundedSender<()>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            let _ = self.0.send(());
        }
    }
    let cancelled = Arc::new(cancelled);
    Router::new()
        .route(
            "/items/{id}",
            get(
                |Path(id): Path<u64>, Params(q): Params<BTreeMap<String, String>>| async move {
                    Json(json!({"get": id, "query": q}))
                },
            )
            .put(|Path(id): Path<u64>, Json(v): Json<Value>| async move {
                Json(json!({"put": id, "body": v}))
            })
            .patch(|Path(id): Path<u64>, Json(v): Json<Value>| async move {
                Json(json!({"patch": id, "body": v}))
            })
            .delete(|Path(id): Path<u64>| async move {
                if id == 0 {
                    Err(ApiError::not_found("no item 0"))
                } else {
                    Ok(Json(json!({"deleted": id})))
                }
            }),
        )
        .route(
            "/items",
            post(|Json(v): Json<Value>| async move {
                (StatusCode::CREATED, Json(json!({"created": v})))
            }),
        )
        .route(
            "/whoami",
            get(|headers: HeaderMap| async move {
                let h = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                Json(json!({
                    "user": h("rrssh-caller-user"),
                    "fingerprint": h("rrssh-caller-fingerprint"),
                    "authorization": h("authorization"),
                    "timeout": h("rrssh-timeout"),
                }))
            }),
        )
        .route(
            "/count",
            stream(|Params(q): Params<BTreeMap<String, u64>>| async move {
                let n = q.get("n").copied().unwrap_or(3);
                JsonStream::new(futures_util::stream::iter(0..n).map(|i| json!({"i": i})))
            }),
        )
        .route(
            "/fails",
            stream(|| async {
                JsonStream::try_new(futures_util::stream::iter(0..3u32).map(|i| {
                    if i < 2 {
                        Ok(i)
                    } else {
                        Err(ApiError::internal("disk on fire"))
                    }
                }))
            }),
        )
        .route(
            "/endless",
            stream(|| async {
                JsonStream::new(futures_util::stream::iter(0u64..).then(|i| async move {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    i
                }))
            }),
        )
        .route(
            "/slow",
            get(move || {
                let guard = OnDrop((*cancelled).clone());
                async move {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    drop(guard);
                    "late"
                }
            }),
        )
}

struct Setup {
    hub: Hub,
    http: std::net::SocketAddr,
    cancelled: mpsc::UnboundedReceiver<()>,
    _service: rrssh::Client,
    _keys: Keys,
}

async fn setup(gateway: impl FnOnce(Gateway) -> Gateway) -> Setup {
    let keys = Keys::new();
    let hub = server(&keys, None).await;
    let (tx, cancelled) = mpsc::unbounded_channel();
    let svc = client(&keys, &hub)
        .serve(service(tx))
        .service_name("inventory")
        .connect()
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || hub
            .peer("inventory")
            .is_connected())
        .await
    );
    let mut tokens = Tokens::new();
    tokens
        .insert("ops", OPS, Grants::parse("call:*").unwrap())
        .insert("dash", DASH, Grants::parse("call:billing").unwrap());
    let gw = gateway(Gateway::new(hub.registry()).tokens(tokens));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    tokio::spawn(gw.serve(listener));
    Setup {
        hub,
        http,
        cancelled,
        _service: svc,
        _keys: keys,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_verb_reaches_the_service_through_http() {
    let s = setup(|g| g).await;
    let auth = bearer(OPS);
    let h = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];

    let r = http(
        s.http,
        "GET",
        "/peers/inventory/items/7?color=red&size=2",
        &h,
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json(),
        json!({"get": 7, "query": {"color": "red", "size": "2"}})
    );
    assert_eq!(r.headers["content-type"], "application/json");

    let r = http(
        s.http,
        "POST",
        "/peers/inventory/items",
        &h,
        r#"{"name":"bolt"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json(), json!({"created": {"name": "bolt"}}));

    let r = http(s.http, "PUT", "/peers/inventory/items/3", &h, "[1,2]").await;
    assert_eq!(r.json(), json!({"put": 3, "body": [1, 2]}));
    let r = http(s.http, "PATCH", "/peers/inventory/items/3", &h, "5").await;
    assert_eq!(r.json(), json!({"patch": 3, "body": 5}));
    let r = http(s.http, "DELETE", "/peers/inventory/items/3", &h, "").await;
    assert_eq!(r.json(), json!({"deleted": 3}));

    // The peer's own errors pass through unchanged.
    let r = http(s.http, "DELETE", "/peers/inventory/items/0", &h, "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"]["message"], "no item 0");
    let r = http(s.http, "GET", "/peers/inventory/nowhere", &h, "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"]["status"], 404);
    let r = http(s.http, "POST", "/peers/inventory/items", &h, "{not json").await;
    assert!(r.status.is_client_error(), "{}", r.status);
    assert!(r.json()["error"]["message"].is_string());

    // The service sees who called, never the token.
    let r = http(s.http, "GET", "/peers/inventory/whoami", &h, "").await;
    assert_eq!(
        r.json(),
        json!({"user": "ops", "fingerprint": "token:ops", "authorization": null, "timeout": null})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_arrive_as_ndjson_and_a_failed_stream_never_looks_complete() {
    let s = setup(|g| g).await;
    let auth = bearer(OPS);
    let h = [("authorization", auth.as_str())];
    let r = http(s.http, "STREAM", "/peers/inventory/count?n=4", &h, "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/x-ndjson");
    assert_eq!(
        r.body.unwrap(),
        "{\"i\":0}\n{\"i\":1}\n{\"i\":2}\n{\"i\":3}\n"
    );

    // A GET that accepts NDJSON is a STREAM too (for clients that cannot send custom methods).
    let h2 = [
        ("authorization", auth.as_str()),
        ("accept", "application/x-ndjson"),
    ];
    let r = http(s.http, "GET", "/peers/inventory/count?n=2", &h2, "").await;
    assert_eq!(r.body.unwrap(), "{\"i\":0}\n{\"i\":1}\n");

    // A stream that fails: its items, one error line, then the transfer fails.
    let r = http(s.http, "STREAM", "/peers/inventory/fails", &h, "").await;
    assert_eq!(r.status, StatusCode::OK);
    let err = r.body.expect_err("a failed stream must not end cleanly");
    println!("failed stream seen by the HTTP client as: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_stream_shows_its_error_line_before_the_abort() {
    let s = setup(|g| g).await;
    // Read the raw bytes, to see what arrived before the abort.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = TcpStream::connect(s.http).await.unwrap();
    tcp.write_all(
        format!("STREAM /peers/inventory/fails HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {OPS}\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    // Until the gateway closes the connection (EOF or reset): it does not keep it for reuse.
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = tcp.read(&mut buf).await {
            raw.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("the gateway closes the aborted response");
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.contains("transfer-encoding: chunked"), "{raw}");
    assert!(raw.contains("0\n") && raw.contains("1\n"), "{raw}");
    assert!(raw.contains(r#""message":"disk on fire""#), "{raw}");
    assert!(!raw.ends_with("0\r\n\r\n"), "no final chunk: {raw}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_peers_deadlines_and_cancellation() {
    let mut s = setup(|g| g.default_timeout(Duration::from_secs(20))).await;
    let auth = bearer(OPS);
    let h = [("authorization", auth.as_str())];

    // A peer that is not connected: 503 with the standard error JSON.
    let r = http(s.http, "GET", "/peers/billing/x", &h, "").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("billing")
    );

    // The default deadline travels with calls that set none; one that is set wins.
    let r = http(s.http, "GET", "/peers/inventory/whoami", &h, "").await;
    let left: u64 = r.json()["timeout"].as_str().unwrap().parse().unwrap();
    assert!((19_000..=20_000).contains(&left), "{left}");
    let h2 = [("authorization", auth.as_str()), ("rrssh-timeout", "150")];
    let started = std::time::Instant::now();
    let r = http(s.http, "GET", "/peers/inventory/slow", &h2, "").await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(r.json()["error"]["status"], 504);
    println!(
        "deadline of 150 ms answered 504 after {} ms",
        started.elapsed().as_millis()
    );
    tokio::time::timeout(Duration::from_secs(5), s.cancelled.recv())
        .await
        .expect("the timed-out handler was stopped");

    // An HTTP client that goes away cancels the call on the peer.
    let addr = s.http;
    let auth2 = auth.clone();
    let call = tokio::spawn(async move {
        http(
            addr,
            "GET",
            "/peers/inventory/slow",
            &[("authorization", &auth2)],
            "",
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(s.cancelled.try_recv().is_err(), "the call is still running");
    let started = std::time::Instant::now();
    call.abort();
    tokio::time::timeout(Duration::from_secs(5), s.cancelled.recv())
        .await
        .expect("the handler was cancelled when the HTTP client left");
    println!(
        "HTTP client gone: handler dropped {} ms later",
        started.elapsed().as_millis()
    );

    // The peer goes away: calls get 503, and the listing is empty.
    s._service.close().await;
    assert!(eventually(Duration::from_secs(5), || s.hub.peers().is_empty()).await);
    let r = http(s.http, "GET", "/peers/inventory/items/1", &h, "").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
}

/// Any HTTP client works: the same calls from curl, if it is installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_calls_a_service_and_reads_a_stream() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("RRSSH_REQUIRE_CURL").is_none(),
            "curl is required (RRSSH_REQUIRE_CURL is set)"
        );
        crate::skipped("curl is not installed (apt-get install curl)");
        return;
    }
    let s = setup(|g| g).await;
    let base = format!("http://{}", s.http);
    let auth = format!("authorization: Bearer {OPS}");
    let curl = |args: Vec<String>| async move {
        tokio::process::Command::new("curl")
            .args(["-sS", "--max-time", "10"])
            .args(args)
            .output()
            .await
            .unwrap()
    };
    let out = curl(vec![
        "-H".into(),
        auth.clone(),
        "-H".into(),
        "content-type: application/json".into(),
        "-d".into(),
        r#"{"name":"nut"}"#.into(),
        format!("{base}/peers/inventory/items"),
    ])
    .await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        json!({"created": {"name": "nut"}})
    );
    let out = curl(vec![
        "-N".into(),
        "-X".into(),
        "STREAM".into(),
        "-H".into(),
        auth.clone(),
        format!("{base}/peers/inventory/count?n=3"),
    ])
    .await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"{\"i\":0}\n{\"i\":1}\n{\"i\":2}\n");
    // A failed stream: curl prints the error line and fails (exit 18: partial transfer).
    let out = curl(vec![
        "-X".into(),
        "STREAM".into(),
        "-H".into(),
        auth,
        format!("{base}/peers/inventory/fails"),
    ])
    .await;
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("disk on fire"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_lost_mid_stream_fails_the_http_transfer() {
    let s = setup(|g| g).await;
    let tcp = TcpStream::connect(s.http).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method("STREAM")
        .uri("/peers/inventory/endless")
        .header("authorization", bearer(OPS))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let mut body = send.send_request(req).await.unwrap().into_body();
    let mut seen = String::new();
    while seen.matches('\n').count() < 5 {
        let frame = body.frame().await.unwrap().unwrap();
        seen.push_str(std::str::from_utf8(&frame.into_data().unwrap()).unwrap());
    }
    s._service.close().await;
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match body.frame().await {
                Some(Ok(_)) => continue,
                Some(Err(e)) => break Err(e.to_string()),
                None => break Ok(()),
            }
        }
    })
    .await
    .expect("the transfer ends once the peer is gone");
    println!(
        "peer lost after {} items: HTTP client saw {end:?}",
        seen.lines().count()
    );
    assert!(end.is_err(), "a cut stream must not end cleanly");
}

/// Before: the gateway never cut idle or slowloris connections. A head sent too slowly is
/// cut at the header timeout; a kept-alive connection that goes quiet at the idle timeout; one
/// over the connection cap is answered 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_idle_connections_and_one_too_many_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = setup(|g| {
        g.header_timeout(Duration::from_millis(500))
            .idle_timeout(Duration::from_secs(1))
            .max_connections(4)
    })
    .await;
    let closed_within = |mut tcp: tokio::net::TcpStream, limit: Duration| async move {
        let start = std::time::Instant::now();
        let mut buf = Vec::new();
        let r = tokio::time::timeout(limit, tcp.read_to_end(&mut buf)).await;
        (
            r.is_ok(),
            start.elapsed(),
            String::from_utf8_lossy(&buf).into_owned(),
        )
    };
    // A head that never ends.
    let mut slow = tokio::net::TcpStream::connect(s.http).await.unwrap();
    slow.write_all(b"GET /peers HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (closed, after, _) = closed_within(slow, Duration::from_secs(5)).await;
    assert!(closed, "a slow head must be cut");
    println!("slow head cut after {after:?}");
    // A connection that asked once, then says nothing.
    let mut idle = tokio::net::TcpStream::connect(s.http).await.unwrap();
    let req = format!("GET /peers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {OPS}\r\n\r\n");
    idle.write_all(req.as_bytes()).await.unwrap();
    let (closed, after, text) = closed_within(idle, Duration::from_secs(5)).await;
    assert!(closed && text.starts_with("HTTP/1.1 200"), "{text}");
    println!("idle connection cut after {after:?}");
    // Four held; the fifth is told why.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(tokio::net::TcpStream::connect(s.http).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let fifth = tokio::net::TcpStream::connect(s.http).await.unwrap();
    let (closed, _, text) = closed_within(fifth, Duration::from_secs(2)).await;
    assert!(closed && text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("limit of 4 connections"), "{text}");
    drop(held);
}
