//! Feeds arbitrary methods and targets (path and query) to a router with static, parameter,
//! catch-all and nested routes and typed extractors: it must answer, never panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rrssh::routing::{get, post};
use rrssh::{Body, Params, Path, Request, Router};
use tower::ServiceExt;

fn router() -> &'static (tokio::runtime::Runtime, Router) {
    static R: OnceLock<(tokio::runtime::Runtime, Router)> = OnceLock::new();
    R.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let api = Router::new()
            .route("/users/{id}", get(|Path(id): Path<u64>| async move { id.to_string() }))
            .route(
                "/users/{id}/posts/{slug}",
                get(|Path((id, slug)): Path<(u32, String)>| async move { format!("{id}{slug}") }),
            )
            .route("/files/{*rest}", get(|Path(rest): Path<String>| async move { rest }))
            .route(
                "/search",
                get(|Params(q): Params<std::collections::HashMap<String, String>>| async move {
                    q.len().to_string()
                }),
            )
            .route("/echo", post(|body: String| async move { body }));
        let router = Router::new().nest("/v1", api.clone()).merge(api);
        (rt, router)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&m, target)) = data.split_first() else { return };
    let method = ["GET", "POST", "PUT", "PATCH", "DELETE", "STREAM"][m as usize % 6];
    let Ok(target) = std::str::from_utf8(target) else { return };
    let Ok(uri) = target.parse::<http::Uri>() else { return };
    let mut req = Request::new(Body::empty());
    *req.method_mut() = method.parse().unwrap();
    *req.uri_mut() = uri;
    let (rt, router) = router();
    let res = rt.block_on(router.clone().oneshot(req)).unwrap();
    assert!(matches!(res.status().as_u16(), 200 | 400 | 404 | 405 | 415 | 422), "{}", res.status());
});
