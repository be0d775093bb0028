//! The OpenAPI document a router serves: scoped routes only to callers holding the scope, as
//! in the route listing.

use rrssh::client::CallExt as _;
use rrssh::extract::PeerInfo;
use rrssh::test::TestClient;
use rrssh::{Json, Router, routes};
use serde_json::Value;

/// Everyone's.
#[rrssh::get("/public")]
async fn public() -> Json<u8> {
    Json(1)
}

/// Admins only.
#[rrssh::post("/admin/reset", scope = "admin")]
async fn reset() -> Json<u8> {
    Json(2)
}

#[tokio::test]
async fn the_document_shows_scoped_routes_only_to_holders_of_the_scope() {
    let app = Router::new().mount(routes![public, reset]);
    let doc = |client: TestClient| async move {
        client
            .get(rrssh::openapi::OPENAPI_PATH)
            .receive::<Value>()
            .await
            .unwrap()
    };
    let plain = doc(TestClient::new(app.clone())).await;
    assert!(plain["paths"]["/public"]["get"].is_object(), "{plain}");
    assert!(plain["paths"].get("/admin/reset").is_none(), "{plain}");
    let admin = doc(TestClient::new(app.clone()).with_peer(
        PeerInfo::new("ops", "SHA256:x").scopes(rrssh::auth::Grants::parse("admin").unwrap()),
    ))
    .await;
    assert_eq!(
        admin["paths"]["/admin/reset"]["post"]["x-rrssh-scope"],
        "admin"
    );
    // The same document as Router::openapi builds, for a caller that holds every scope.
    let built = app.openapi("rrssh service", "1");
    assert_eq!(built["paths"], admin["paths"]);
}
