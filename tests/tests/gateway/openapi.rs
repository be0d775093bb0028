//! The OpenAPI document through the gateway: a Python client that knows only the document
//! (validated with openapi-spec-validator) calls every operation of a service behind a hub,
//! with parameters and bodies made from the schemas, and checks each answer against them.

use std::time::Duration;

use rrssh::{Json, JsonStream, Params, Path, StatusCode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::*;

/// A book.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Book {
    id: u64,
    title: String,
    tags: Vec<String>,
}

/// A new book.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub(crate) struct NewBook {
    title: String,
}

/// A search.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Search {
    /// Words in the title.
    q: String,
    /// At most this many.
    limit: Option<u32>,
}

/// A catalog of books.
#[rrssh::api]
pub(crate) trait Catalog {
    /// One book.
    #[get("/books/{id}")]
    async fn book(&self, id: Path<u64>) -> Json<Book>;
    /// Books matching a search.
    #[get("/books")]
    async fn search(&self, q: Params<Search>) -> Json<Vec<Book>>;
    /// Adds a book.
    #[post("/books")]
    async fn add(&self, new: Json<NewBook>) -> (StatusCode, Json<Book>);
    /// Removes a book.
    #[delete("/books/{id}")]
    async fn remove(&self, id: Path<u64>) -> StatusCode;
    /// New books as they arrive.
    #[stream("/books/{shelf}/new")]
    async fn arrivals(&self, shelf: Path<String>) -> JsonStream<Book>;
}

#[derive(Clone)]
struct Shelf;

fn book(id: u64, title: &str) -> Book {
    Book {
        id,
        title: title.to_owned(),
        tags: vec!["py".to_owned()],
    }
}

impl Catalog for Shelf {
    async fn book(&self, Path(id): Path<u64>) -> Json<Book> {
        Json(book(id, "Dune"))
    }
    async fn search(&self, Params(s): Params<Search>) -> Json<Vec<Book>> {
        let n = s.limit.unwrap_or(2);
        Json((0..u64::from(n)).map(|i| book(i, &s.q)).collect())
    }
    async fn add(&self, Json(new): Json<NewBook>) -> (StatusCode, Json<Book>) {
        (StatusCode::CREATED, Json(book(9, &new.title)))
    }
    async fn remove(&self, _id: Path<u64>) -> StatusCode {
        StatusCode::NO_CONTENT
    }
    async fn arrivals(&self, Path(shelf): Path<String>) -> JsonStream<Book> {
        JsonStream::new(futures_util::stream::iter(
            (1..=3).map(move |i| book(i, &shelf)),
        ))
    }
}

/// A Python with openapi-spec-validator, if there is one.
fn python() -> Option<String> {
    let candidates = std::env::var("RRSSH_PYTHON")
        .ok()
        .into_iter()
        .chain(["python3".to_owned()]);
    for py in candidates {
        let ok = std::process::Command::new(&py)
            .args(["-c", "import openapi_spec_validator, jsonschema"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(py);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_client_calls_every_operation_from_the_document_alone() {
    let Some(py) = python() else {
        assert!(
            std::env::var_os("RRSSH_REQUIRE_PYTHON_TOOLS").is_none(),
            "openapi-spec-validator is required (RRSSH_REQUIRE_PYTHON_TOOLS is set)"
        );
        crate::skipped(
            "no Python with openapi-spec-validator (pip install openapi-spec-validator, then RRSSH_PYTHON=PATH)",
        );
        return;
    };
    let keys = Keys::new();
    let hub = server(&keys, None).await;
    let _svc = client(&keys, &hub)
        .serve(Shelf.into_router())
        .service_name("catalog")
        .connect()
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || hub
            .peer("catalog")
            .is_connected())
        .await
    );
    let mut tokens = Tokens::new();
    tokens
        .insert("py", OPS, Grants::parse("call:catalog").unwrap())
        .insert("dash", DASH, Grants::parse("call:billing").unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(Gateway::new(hub.registry()).tokens(tokens).serve(listener));

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/openapi_client.py");
    let out = tokio::process::Command::new(&py)
        .args([script, &base, "/peers/catalog/openapi.json", OPS])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("document: valid OpenAPI 3.1.0"), "{stdout}");
    assert!(stdout.contains("calls: 5"), "{stdout}");
    assert!(
        stdout.contains("arrivals GET /peers/catalog/books/py/new 200 3 items"),
        "{stdout}"
    );
    // A token without the scope gets no document: 403, like any call to that peer.
    let addr = base.trim_start_matches("http://").parse().unwrap();
    let r = http(
        addr,
        "GET",
        "/peers/catalog/openapi.json",
        &[("authorization", &bearer(DASH))],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["error"]["status"], 403);
}
