//! The wire protocol over an in-memory pipe: both ends serve and call on one carrier.

use std::time::Duration;

use futures_util::StreamExt;
use rrssh::client::{CallExt, Error};
use rrssh::proto::{Connection, ConnectionConfig, Role};
use rrssh::routing::{get, post, stream};
use rrssh::{Bytes, JsonStream, Path, Router};

pub(crate) async fn pair(a: Router, b: Router) -> (Connection, Connection) {
    let (x, y) = tokio::io::duplex(64 * 1024);
    let mut ca = ConnectionConfig::new(Role::Initiator);
    ca.router = Some(a);
    let mut cb = ConnectionConfig::new(Role::Acceptor);
    cb.router = Some(b);
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
