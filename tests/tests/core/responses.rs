use bytes::Bytes;
use http::HeaderValue;
use rrssh::client::Call;
use rrssh::routing::get;
use rrssh::test::TestClient;
use rrssh::{ApiError, Body, HeaderMap, IntoResponse, Json, Response, Router, StatusCode};

use super::{json_of, req};

async fn get_one<R: IntoResponse + Clone + Send + Sync + 'static>(r: R) -> Response {
    let app = TestClient::new(Router::new().route("/", get(move || async move { r })));
    app.call(req("GET", "/")).await.unwrap()
}

#[tokio::test]
async fn every_into_response() {
    let r = get_one(()).await;
    assert_eq!(json_of(r).await, (200, serde_json::Value::Null));
    assert_eq!(json_of(get_one(StatusCode::NO_CONTENT).await).await.0, 204);

    let r = get_one(String::from("s")).await;
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(json_of(r).await.1, "s");
    assert_eq!(json_of(get_one("static").await).await.1, "static");

    let r = get_one(Bytes::from_static(b"\x01\x02")).await;
    assert_eq!(r.headers()["content-type"], "application/octet-stream");

    let r = get_one(Json(serde_json::json!({"msg": "Hello World!"}))).await;
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(json_of(r).await.1["msg"], "Hello World!");

    let r = get_one((StatusCode::CREATED, Json(1))).await;
    assert_eq!(json_of(r).await, (201, serde_json::json!(1)));

    let mut h = HeaderMap::new();
    h.insert("x-y", HeaderValue::from_static("z"));
    let r = get_one((h.clone(), "h")).await;
    assert_eq!(r.headers()["x-y"], "z");
    let r = get_one((StatusCode::ACCEPTED, h, "h")).await;
    assert_eq!(
        (r.status().as_u16(), &r.headers()["x-y"]),
        (202, &HeaderValue::from_static("z"))
    );

    let ok: Result<&'static str, StatusCode> = Ok("fine");
    assert_eq!(
        json_of(get_one(ok).await).await,
        (200, serde_json::json!("fine"))
    );
    let err: Result<&'static str, ApiError> =
        Err(ApiError::new(StatusCode::CONFLICT, "taken").with_detail("x"));
    assert_eq!(
        json_of(get_one(err).await).await,
        (
            409,
            serde_json::json!({"error": {"status": 409, "message": "taken", "detail": "x"}})
        )
    );
}

#[tokio::test]
async fn raw_response_passes_through() {
    let app = TestClient::new(Router::new().route(
        "/",
        get(|| async {
            let mut r = Response::new(Body::from("raw"));
            *r.status_mut() = StatusCode::IM_A_TEAPOT;
            r
        }),
    ));
    assert_eq!(
        json_of(app.call(req("GET", "/")).await.unwrap()).await,
        (418, serde_json::json!("raw"))
    );
}
