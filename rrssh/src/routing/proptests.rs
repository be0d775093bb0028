//! Property tests of route matching: any target gets an answer (never a panic), and any path
//! parameter survives percent-encoding.

use std::collections::HashMap;

use http_body_util::BodyExt;
use proptest::prelude::*;
use tower::ServiceExt;

use crate::routing::{get, post};
use crate::{Body, Params, Path, Request, Router};

fn router() -> Router {
    let api = Router::new()
        .route(
            "/users/{id}",
            get(|Path(id): Path<u64>| async move { id.to_string() }),
        )
        .route(
            "/users/{id}/posts/{slug}",
            get(|Path((id, slug)): Path<(u32, String)>| async move { format!("{id}:{slug}") }),
        )
        .route("/echo/{s}", get(|Path(s): Path<String>| async move { s }))
        .route(
            "/files/{*rest}",
            get(|Path(rest): Path<String>| async move { rest }),
        )
        .route(
            "/search",
            get(|Params(q): Params<HashMap<String, String>>| async move { q.len().to_string() }),
        )
        .route("/post", post(|body: String| async move { body }));
    Router::new().nest("/v1", api.clone()).merge(api)
}

fn call(method: &str, target: &str) -> Option<(u16, String)> {
    let uri: http::Uri = target.parse().ok()?;
    let mut req = Request::new(Body::empty());
    *req.method_mut() = method.parse().ok()?;
    *req.uri_mut() = uri;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let res = router().oneshot(req).await.unwrap();
        let status = res.status().as_u16();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        Some((status, String::from_utf8_lossy(&body).into_owned()))
    })
}

/// Percent-encodes everything but unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn method() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["GET", "POST", "PUT", "PATCH", "DELETE", "STREAM"])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_target_gets_an_answer(m in method(), target in "/[a-zA-Z0-9/{}*%?=&\\[\\]._~-]{0,80}") {
        if let Some((status, _)) = call(m, &target) {
            prop_assert!(matches!(status, 200 | 400 | 404 | 405 | 415 | 422), "{} {} -> {}", m, target, status);
        }
    }

    #[test]
    fn any_segment_round_trips_through_a_path_parameter(s in "\\PC{1,40}") {
        let (status, body) = call("GET", &format!("/v1/echo/{}", encode(&s))).unwrap();
        prop_assert_eq!(status, 200);
        prop_assert_eq!(body, s);
    }

    #[test]
    fn numbers_parse_and_non_numbers_are_400(n: u64, junk in "[a-z]{1,8}") {
        prop_assert_eq!(call("GET", &format!("/users/{n}")), Some((200, n.to_string())));
        prop_assert_eq!(call("GET", &format!("/users/{junk}")).map(|r| r.0), Some(400));
    }
}
