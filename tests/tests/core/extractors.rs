use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use rrssh::client::Call;
use rrssh::extract::rejection::JsonRejection;
use rrssh::extract::{Deadline, FromRef, PeerInfo};
use rrssh::routing::{get, post};
use rrssh::test::TestClient;
use rrssh::{Extension, HeaderMap, Json, Params, Path, Peer, Router, State};
use serde::{Deserialize, Serialize};

use super::{json_of, json_req, req};

#[derive(Debug, Deserialize, Serialize, PartialEq)]
struct Pair {
    org: String,
    repo: u32,
}

#[tokio::test]
async fn path_single_tuple_struct_and_bad_value() {
    async fn one(Path(id): Path<u64>) -> String {
        id.to_string()
    }
    async fn tuple(Path((org, repo)): Path<(String, u32)>) -> String {
        format!("{org}/{repo}")
    }
    async fn strukt(Path(p): Path<Pair>) -> Json<Pair> {
        Json(p)
    }
    let app = TestClient::new(
        Router::new()
            .route("/one/{id}", get(one))
            .route("/t/{org}/{repo}", get(tuple))
            .route("/s/{org}/{repo}", get(strukt)),
    );
    assert_eq!(
        json_of(app.call(req("GET", "/one/42")).await.unwrap())
            .await
            .1,
        42
    );
    assert_eq!(
        json_of(app.call(req("GET", "/t/rust/7")).await.unwrap())
            .await
            .1,
        "rust/7"
    );
    let (_, body) = json_of(app.call(req("GET", "/s/a%2Fb/9")).await.unwrap()).await;
    assert_eq!(body, serde_json::json!({"org": "a/b", "repo": 9}));
    let (status, body) = json_of(app.call(req("GET", "/one/x")).await.unwrap()).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "invalid path: cannot parse `x` as u64 for capture `id`"
    );
}

#[derive(Debug, Deserialize, Serialize, PartialEq, Clone)]
struct Filter {
    tags: Vec<String>,
    inner: Inner,
    limit: Option<u32>,
}

#[derive(Debug, Deserialize, Serialize, PartialEq, Clone)]
struct Inner {
    name: String,
    ids: Vec<u32>,
}

#[tokio::test]
async fn params_nested_and_sequences_round_trip_through_the_client() {
    async fn echo(Params(f): Params<Filter>) -> Json<Filter> {
        Json(f)
    }
    let app = TestClient::new(Router::new().route("/f", get(echo)));
    let f = Filter {
        tags: vec!["a b".into(), "c&d".into(), "ü".into()],
        inner: Inner {
            name: "x=[y]".into(),
            ids: vec![3, 1, 2],
        },
        limit: Some(5),
    };
    use rrssh::client::CallExt;
    let back: Filter = app.get("/f").params(&f).receive().await.unwrap();
    assert_eq!(back, f);
    let (status, body) = json_of(app.call(req("GET", "/f?tags[0]=a")).await.unwrap()).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid query string"),
        "{body}"
    );
}

#[tokio::test]
async fn json_rejections_400_415_422_413() {
    async fn take(Json(p): Json<Pair>) -> Json<Pair> {
        Json(p)
    }
    let app = TestClient::new(Router::new().route("/p", post(take)).body_limit(64));
    let ok = json_of(
        app.call(json_req("POST", "/p", r#"{"org":"o","repo":1}"#))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(ok, (200, serde_json::json!({"org": "o", "repo": 1})));

    let (s, b) = json_of(
        app.call(json_req("POST", "/p", r#"{"org":"#))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON"),
        "{b}"
    );

    let (s, b) = json_of(
        app.call(json_req("POST", "/p", r#"{"org":1}"#))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 422);
    assert_eq!(
        b["error"]["detail"],
        serde_json::json!({"line": 1, "column": 8})
    );

    let mut r = json_req("POST", "/p", "{}");
    r.headers_mut()
        .insert("content-type", "text/plain".parse().unwrap());
    let (s, _) = json_of(app.call(r).await.unwrap()).await;
    assert_eq!(s, 415);

    let big = format!(r#"{{"org":"{}","repo":1}}"#, "x".repeat(100));
    let (s, b) = json_of(app.call(json_req("POST", "/p", &big)).await.unwrap()).await;
    assert_eq!(s, 413);
    assert_eq!(
        b["error"]["message"],
        "request body is larger than the limit of 64 bytes"
    );
}

#[tokio::test]
async fn json_accepts_plus_json_content_types() {
    async fn take(Json(v): Json<serde_json::Value>) -> Json<serde_json::Value> {
        Json(v)
    }
    let app = TestClient::new(Router::new().route("/p", post(take)));
    let mut r = json_req("POST", "/p", "[1]");
    r.headers_mut().insert(
        "content-type",
        "application/vnd.x+json; charset=utf-8".parse().unwrap(),
    );
    assert_eq!(
        json_of(app.call(r).await.unwrap()).await,
        (200, serde_json::json!([1]))
    );
}

#[tokio::test]
async fn bytes_and_string_bodies() {
    async fn len(b: Bytes) -> String {
        b.len().to_string()
    }
    async fn upper(s: String) -> String {
        s.to_uppercase()
    }
    let app = TestClient::new(
        Router::new()
            .route("/b", post(len))
            .route("/s", post(upper)),
    );
    let mut r = req("POST", "/b");
    *r.body_mut() = rrssh::Body::from(vec![0u8; 1000]);
    assert_eq!(json_of(app.call(r).await.unwrap()).await.1, 1000);
    let mut r = req("POST", "/s");
    *r.body_mut() = rrssh::Body::from("abc");
    assert_eq!(json_of(app.call(r).await.unwrap()).await.1, "ABC");
    let mut r = req("POST", "/s");
    *r.body_mut() = rrssh::Body::from(vec![0xff, 0xfe]);
    let (s, b) = json_of(app.call(r).await.unwrap()).await;
    assert_eq!(s, 400);
    assert!(b["error"]["message"].as_str().unwrap().contains("UTF-8"));
}

#[derive(Clone)]
struct AppState {
    db: Db,
}

#[derive(Clone)]
struct Db(&'static str);

impl FromRef<AppState> for Db {
    fn from_ref(s: &AppState) -> Db {
        s.db.clone()
    }
}

#[tokio::test]
async fn state_substate_extension_headers() {
    async fn sub(State(db): State<Db>) -> &'static str {
        db.0
    }
    async fn ext(Extension(n): Extension<u32>) -> String {
        n.to_string()
    }
    async fn hdr(h: HeaderMap) -> String {
        h.get("x-a")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }
    let app = Router::new()
        .route("/sub", get(sub))
        .route("/hdr", get(hdr))
        .with_state(AppState { db: Db("main") });
    let with_ext: Router = Router::new().route("/ext", get(ext)).layer(Extension(5u32));
    let without_ext: Router = Router::new().route("/noext", get(ext));
    let app = TestClient::new(app.merge(with_ext).merge(without_ext));
    assert_eq!(
        json_of(app.call(req("GET", "/sub")).await.unwrap()).await.1,
        "main"
    );
    assert_eq!(
        json_of(app.call(req("GET", "/ext")).await.unwrap()).await.1,
        5
    );
    let mut r = req("GET", "/hdr");
    r.headers_mut().insert("x-a", "v".parse().unwrap());
    assert_eq!(json_of(app.call(r).await.unwrap()).await.1, "v");
    let (s, b) = json_of(app.call(req("GET", "/noext")).await.unwrap()).await;
    assert_eq!(s, 500);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing request extension `u32`")
    );
}

#[tokio::test]
async fn peer_is_the_callers_identity_or_401() {
    async fn who(peer: Peer) -> Json<BTreeMap<&'static str, String>> {
        Json(BTreeMap::from([
            ("user", peer.user().to_owned()),
            ("fp", peer.fingerprint().to_owned()),
            ("comment", peer.comment().unwrap_or("").to_owned()),
            ("conn", peer.connection_id().to_string()),
        ]))
    }
    async fn maybe(peer: Option<Peer>) -> String {
        peer.map_or_else(|| "anonymous".to_owned(), |p| p.user().to_owned())
    }
    let router = Router::new()
        .route("/who", get(who))
        .route("/maybe", get(maybe));
    let app = TestClient::new(router.clone()).with_peer(
        PeerInfo::new("ada", "SHA256:abc")
            .comment("laptop")
            .connection_id(9),
    );
    let (_, b) = json_of(app.call(req("GET", "/who")).await.unwrap()).await;
    assert_eq!(
        b,
        serde_json::json!({"user": "ada", "fp": "SHA256:abc", "comment": "laptop", "conn": "9"})
    );
    let anon = TestClient::new(router).without_peer();
    assert_eq!(
        json_of(anon.call(req("GET", "/who")).await.unwrap())
            .await
            .0,
        401
    );
    assert_eq!(
        json_of(anon.call(req("GET", "/maybe")).await.unwrap())
            .await
            .1,
        "anonymous"
    );
}

#[tokio::test]
async fn option_and_result_extractors() {
    async fn opt(p: Option<Params<Pair>>) -> String {
        p.map_or_else(|| "none".to_owned(), |p| p.0.org)
    }
    async fn res(j: Result<Json<Pair>, JsonRejection>) -> String {
        match j {
            Ok(j) => j.0.org,
            Err(e) => format!("{}: {}", e.status().as_u16(), e.body_text()),
        }
    }
    let app = TestClient::new(Router::new().route("/o", get(opt)).route("/r", post(res)));
    assert_eq!(
        json_of(app.call(req("GET", "/o?org=a&repo=1")).await.unwrap())
            .await
            .1,
        "a"
    );
    assert_eq!(
        json_of(app.call(req("GET", "/o?org=a")).await.unwrap())
            .await
            .1,
        "none"
    );
    let (s, b) = json_of(app.call(req("POST", "/r")).await.unwrap()).await;
    assert_eq!(s, 200);
    assert_eq!(
        b,
        "415: expected a request with `content-type: application/json`"
    );
}

#[tokio::test(start_paused = true)]
async fn deadline_expired_answers_504_without_running_the_handler() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let slow = move |d: Deadline| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            let left = d.remaining().unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
            format!("{}", left.as_millis())
        }
    };
    let app = TestClient::new(Router::new().route("/slow", get(slow)));
    let mut r = req("GET", "/slow");
    r.headers_mut()
        .insert("rrssh-timeout", "0".parse().unwrap());
    let (s, b) = json_of(app.call(r).await.unwrap()).await;
    assert_eq!(
        (s, b["error"]["message"].as_str()),
        (504, Some("deadline exceeded"))
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        0,
        "an expired call must not run"
    );

    let mut r = req("GET", "/slow");
    r.headers_mut()
        .insert("rrssh-timeout", "250".parse().unwrap());
    let (s, _) = json_of(app.call(r).await.unwrap()).await;
    assert_eq!(s, 504, "the handler is stopped at the deadline");
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    let mut r = req("GET", "/slow");
    r.headers_mut()
        .insert("rrssh-timeout", "soon".parse().unwrap());
    assert_eq!(json_of(app.call(r).await.unwrap()).await.0, 400);
}

#[tokio::test]
async fn deadline_extractor_sees_the_remaining_budget() {
    async fn left(d: Deadline) -> String {
        d.remaining()
            .map_or_else(|| "none".to_owned(), |l| (l.as_millis() > 4000).to_string())
    }
    let app = TestClient::new(Router::new().route("/l", get(left)));
    assert_eq!(
        json_of(app.call(req("GET", "/l")).await.unwrap()).await.1,
        "none"
    );
    let mut r = req("GET", "/l");
    r.headers_mut()
        .insert("rrssh-timeout", "5000".parse().unwrap());
    assert_eq!(json_of(app.call(r).await.unwrap()).await.1, true);
}
