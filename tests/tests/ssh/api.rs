//! An `#[rrssh::api]` trait over a real connection: every extractor kind and every output
//! kind, served by `into_router` and called through the generated client, forward and
//! through a hub.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use http::HeaderMap;
use rrssh::client::Error;
use rrssh::{ApiError, Deadline, Json, JsonStream, Params, Path, Peer, StatusCode};
use serde::{Deserialize, Serialize};

use super::{Keys, client, eventually, server, server_builder};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Item {
    id: u64,
    name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Page {
    from: u64,
    to: u64,
}

/// A shared API, as an API crate would hold it.
#[rrssh::api]
pub(crate) trait Shop {
    /// One item, or 404.
    #[get("/items/{id}")]
    async fn item(&self, id: Path<u64>) -> Result<Json<Item>, ApiError>;
    /// Two captures.
    #[get("/orgs/{org}/items/{id}")]
    async fn in_org(&self, ids: Path<(String, u64)>) -> Json<String>;
    /// A query.
    #[get("/items")]
    async fn page(&self, q: Params<Page>) -> Json<Vec<u64>>;
    /// Who calls, with a JSON body and a status.
    #[post("/items")]
    async fn create(&self, peer: Peer, body: Json<Item>) -> (StatusCode, Json<(String, Item)>);
    /// Raw bytes in, their length out.
    #[put("/blobs/{id}")]
    async fn blob(&self, id: Path<u64>, body: Bytes) -> Json<(u64, usize)>;
    /// Text in, text out.
    #[patch("/echo")]
    async fn echo(&self, text: String) -> String;
    /// Headers and the caller's deadline, nothing back.
    #[delete("/items/{id}")]
    async fn remove(&self, id: Path<u64>, headers: HeaderMap, deadline: Deadline) -> StatusCode;
    /// Nothing at all.
    #[post("/ping")]
    async fn ping(&self);
    /// A stream.
    #[stream("/items/{id}/history")]
    async fn history(&self, id: Path<u64>, q: Params<Page>) -> JsonStream<u64>;
}

#[derive(Clone)]
struct Store;

impl Shop for Store {
    async fn item(&self, Path(id): Path<u64>) -> Result<Json<Item>, ApiError> {
        if id == 0 {
            return Err(ApiError::not_found("no item 0"));
        }
        Ok(Json(Item {
            id,
            name: "bolt".into(),
        }))
    }
    async fn in_org(&self, Path((org, id)): Path<(String, u64)>) -> Json<String> {
        Json(format!("{org}/{id}"))
    }
    async fn page(&self, Params(q): Params<Page>) -> Json<Vec<u64>> {
        Json((q.from..q.to).collect())
    }
    async fn create(
        &self,
        peer: Peer,
        Json(item): Json<Item>,
    ) -> (StatusCode, Json<(String, Item)>) {
        (StatusCode::CREATED, Json((peer.user().to_owned(), item)))
    }
    async fn blob(&self, Path(id): Path<u64>, body: Bytes) -> Json<(u64, usize)> {
        Json((id, body.len()))
    }
    async fn echo(&self, text: String) -> String {
        text.to_uppercase()
    }
    async fn remove(&self, Path(id): Path<u64>, _h: HeaderMap, d: Deadline) -> StatusCode {
        if id == 1 && d.remaining().is_some() {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::GONE
        }
    }
    async fn ping(&self) {}
    async fn history(&self, Path(id): Path<u64>, Params(q): Params<Page>) -> JsonStream<u64> {
        JsonStream::new(futures_util::stream::iter(q.from..q.to).map(move |i| i * id))
    }
}

async fn exercise<C: rrssh::client::Call>(shop: &ShopClient<C>, user: &str) {
    let item = Item {
        id: 3,
        name: "nut".into(),
    };
    assert_eq!(shop.item(7).await.unwrap().name, "bolt");
    match shop.item(0).await {
        Err(Error::Status { status, body }) => {
            assert_eq!(status, StatusCode::NOT_FOUND);
            assert_eq!(body.message, "no item 0");
        }
        other => panic!("expected a 404, got {other:?}"),
    }
    assert_eq!(shop.in_org(("acme".into(), 9)).await.unwrap(), "acme/9");
    assert_eq!(shop.page(Page { from: 2, to: 5 }).await.unwrap(), [2, 3, 4]);
    assert_eq!(
        shop.create(item.clone()).await.unwrap(),
        (user.to_owned(), item)
    );
    assert_eq!(
        shop.blob(4, Bytes::from_static(b"12345")).await.unwrap(),
        (4, 5)
    );
    assert_eq!(shop.echo("hi".into()).await.unwrap(), "HI");
    shop.ping().await.unwrap();
    let mut s = shop.history(10, Page { from: 1, to: 4 }).await.unwrap();
    let mut got = Vec::new();
    while let Some(i) = s.next().await {
        got.push(i.unwrap());
    }
    assert_eq!(got, [10, 20, 30]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_trait_serves_and_calls_every_kind_forward_and_through_a_hub() {
    let keys = Keys::new();
    // Forward: the server serves the trait; the client calls it.
    let hub = server(&keys, Some(rrssh::Router::new().merge(Store.into_router()))).await;
    let c = client(&keys, &hub).connect().await.unwrap();
    let shop = ShopClient::new(c.clone());
    exercise(&shop, "ada").await;
    // The caller's deadline reaches the handler: without one, 410; with one (set by a
    // client-side layer), 204.
    match shop.remove(1).await {
        Err(Error::Status { status, .. }) => assert_eq!(status, StatusCode::GONE),
        other => panic!("expected 410 without a deadline, got {other:?}"),
    }
    let timed = tower::ServiceBuilder::new()
        .layer(rrssh::client::DefaultDeadlineLayer::new(
            Duration::from_secs(5),
        ))
        .service(c.clone());
    ShopClient::new(timed).remove(1).await.unwrap();

    // Reverse: the service serves the trait to a hub, the hub calls it by name.
    let hub = server_builder(&keys).bind("127.0.0.1:0").await.unwrap();
    let _svc = client(&keys, &hub)
        .serve(Store.into_router())
        .service_name("shop")
        .connect()
        .await
        .unwrap();
    assert!(eventually(Duration::from_secs(5), || hub.peer("shop").is_connected()).await);
    let shop = ShopClient::new(hub.peer("shop"));
    // The hub is the caller: its Peer has no user name.
    exercise(&shop, "").await;
}
