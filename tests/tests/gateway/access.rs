//! Who may call through the gateway: bearer tokens and their grants, anonymous callers and
//! their scopes, and web pages of other sites kept out by `Host` and `Origin`.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_need_a_token_that_grants_the_peer() {
    let s = setup(|g| g).await;
    let r = http(s.http, "GET", "/peers/inventory/items/1", &[], "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"rrssh\"");
    assert_eq!(r.json()["error"]["status"], 401);

    let wrong = bearer("ffffffffffffffffffffffffffffffff");
    let r = http(
        s.http,
        "GET",
        "/peers/inventory/items/1",
        &[("authorization", &wrong)],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"]["message"], "unknown bearer token");
    let r = http(
        s.http,
        "GET",
        "/peers",
        &[("authorization", "Basic b3BzOnB3")],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // `dash` may call billing only.
    let dash = bearer(DASH);
    let r = http(
        s.http,
        "GET",
        "/peers/inventory/items/1",
        &[("authorization", &dash)],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("call:inventory"),
        "{:?}",
        r.body
    );
    let r = http(s.http, "GET", "/peers", &[("authorization", &dash)], "").await;
    assert_eq!(r.json(), json!([]));
    let ops = bearer(OPS);
    let r = http(s.http, "GET", "/peers", &[("authorization", &ops)], "").await;
    let list = r.json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "inventory");
    assert_eq!(list[0]["user"], "ada");
}

/// An anonymous gateway keeps web pages out: a page whose DNS name was rebound to the gateway
/// (its own name in `Host`) and a cross-site form (another site's `Origin`) are refused; a
/// caller with a token is not a page's ambient authority and is served from anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_calls_from_web_pages_of_other_sites_are_refused() {
    let s = setup(|g| {
        g.anonymous(Grants::parse("call:*").unwrap())
            .allow_host("gw.internal")
    })
    .await;
    let path = "/peers/inventory/whoami";
    let rebound = http(s.http, "GET", path, &[("host", "evil.example:8080")], "").await;
    assert_eq!(rebound.status, StatusCode::FORBIDDEN, "{}", rebound.text());
    assert!(
        rebound.text().contains("loopback names"),
        "{}",
        rebound.text()
    );
    let form = [
        ("origin", "http://evil.example"),
        ("content-type", "text/plain"),
    ];
    let cross = http(s.http, "POST", path, &form, "x").await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN, "{}", cross.text());
    assert!(cross.text().contains("another origin"), "{}", cross.text());
    let own = format!("http://{}", s.http);
    let same = http(s.http, "GET", path, &[("origin", own.as_str())], "").await;
    assert_eq!(same.json()["user"], "anonymous");
    let allowed = http(s.http, "GET", path, &[("host", "GW.internal:8080")], "").await;
    assert_eq!(allowed.json()["user"], "anonymous");
    let bearer = format!("Bearer {OPS}");
    let token = [("host", "evil.example"), ("authorization", bearer.as_str())];
    let with_token = http(s.http, "GET", path, &token, "").await;
    assert_eq!(with_token.status, StatusCode::OK, "{}", with_token.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_callers_get_only_the_scopes_given_to_them() {
    let s = setup(|g| g.anonymous(Grants::parse("call:inventory").unwrap())).await;
    let r = http(s.http, "GET", "/peers/inventory/whoami", &[], "").await;
    assert_eq!(r.json()["user"], "anonymous");
    let r = http(s.http, "GET", "/peers/billing/x", &[], "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}
