//! tower and tower-http layers apply unchanged to a `Router`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rrssh::client::{Call, CallExt, Error};
use rrssh::extract::PeerInfo;
use rrssh::routing::{get, post};
use rrssh::test::TestClient;
use rrssh::{ApiError, Body, IntoResponse, Peer, Request, Router, StatusCode};
use tower::ServiceBuilder;
use tower_http::auth::AsyncRequireAuthorizationLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use super::{json_of, req};

async fn panics() -> &'static str {
    panic!("handler bug")
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(5)).await;
    "late"
}

/// Lets only the key `SHA256:admin` through.
async fn admins_only(req: Request) -> Result<Request, rrssh::Response> {
    match req.extensions().get::<Peer>() {
        Some(p) if p.fingerprint() == "SHA256:admin" => Ok(req),
        Some(_) => Err(ApiError::new(StatusCode::FORBIDDEN, "admins only").into_response()),
        None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "who are you?").into_response()),
    }
}

#[tokio::test]
async fn trace_timeout_catch_panic_authorization_body_limit() {
    let router: Router = Router::new()
        .route("/panic", get(panics))
        .route("/slow", get(slow))
        .route("/ok", get(|| async { "ok" }))
        .route("/echo", post(|b: String| async move { b }))
        .route_layer(AsyncRequireAuthorizationLayer::new(|r: Request| {
            admins_only(r)
        }))
        .layer(
            ServiceBuilder::new()
                .layer(TraceLayer::new_for_http())
                .layer(RequestBodyLimitLayer::new(16))
                .layer(CatchPanicLayer::new())
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::GATEWAY_TIMEOUT,
                    Duration::from_millis(50),
                )),
        );
    let admin = TestClient::new(router.clone()).with_peer(PeerInfo::new("root", "SHA256:admin"));
    let other = TestClient::new(router.clone()).with_peer(PeerInfo::new("eve", "SHA256:eve"));
    let nobody = TestClient::new(router).without_peer();

    assert_eq!(
        json_of(admin.call(req("GET", "/ok")).await.unwrap()).await,
        (200, "ok".into())
    );
    assert_eq!(
        json_of(admin.call(req("GET", "/panic")).await.unwrap())
            .await
            .0,
        500
    );
    assert_eq!(
        json_of(admin.call(req("GET", "/slow")).await.unwrap())
            .await
            .0,
        504
    );
    let big = admin
        .post("/echo")
        .body(vec![b'x'; 100])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let small = admin.post("/echo").body("hi").receive_text().await.unwrap();
    assert_eq!(small, "hi");

    let (s, b) = json_of(other.call(req("GET", "/ok")).await.unwrap()).await;
    assert_eq!(
        (s, b["error"]["message"].as_str()),
        (403, Some("admins only"))
    );
    assert_eq!(
        json_of(nobody.call(req("GET", "/ok")).await.unwrap())
            .await
            .0,
        401
    );
    // route_layer does not apply to unmatched paths: still a 404, not a 401.
    assert_eq!(
        json_of(nobody.call(req("GET", "/none")).await.unwrap())
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn concurrency_limit_around_the_whole_router() {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (r, p) = (running.clone(), peak.clone());
    let handler = move || {
        let (r, p) = (r.clone(), p.clone());
        async move {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            r.fetch_sub(1, Ordering::SeqCst);
            "done"
        }
    };
    let router: Router = Router::new().route("/work", get(handler));
    let limited = ServiceBuilder::new()
        .concurrency_limit(2)
        .service(TestClient::new(router));
    let calls = (0..20).map(|_| {
        let c = limited.clone();
        async move { c.get("/work").receive_text().await }
    });
    let results = futures_util::future::join_all(calls).await;
    assert!(results.iter().all(|r| matches!(r.as_deref(), Ok("done"))));
    assert_eq!(peak.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn client_side_timeout_layer_gives_a_typed_error() {
    let router: Router = Router::new().route("/slow", get(slow));
    let client = ServiceBuilder::new()
        .timeout(Duration::from_millis(20))
        .service(TestClient::new(router));
    match client.get("/slow").send().await {
        Err(Error::Timeout) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    let _ = Body::empty();
}
