use rrssh::client::Call;
use rrssh::routing::{delete, get, post, stream};
use rrssh::test::TestClient;
use rrssh::{ApiError, JsonStream, Path, Router, State};

use super::{json_of, req};

async fn ok() -> &'static str {
    "ok"
}

#[tokio::test]
async fn unknown_path_is_404_with_error_json() {
    let app = TestClient::new(Router::new().route("/a", get(ok)));
    let (status, body) = json_of(app.call(req("GET", "/nope")).await.unwrap()).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["status"], 404);
    assert_eq!(body["error"]["message"], "no route for GET /nope");
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let app = TestClient::new(
        Router::new()
            .route("/a", get(ok).post(ok))
            .route("/a", delete(ok)),
    );
    let res = app.call(req("PUT", "/a")).await.unwrap();
    assert_eq!(res.headers()["allow"], "GET, POST, DELETE");
    let (status, body) = json_of(res).await;
    assert_eq!(status, 405);
    assert_eq!(body["error"]["status"], 405);
}

#[tokio::test]
async fn korv_verbs_route_as_post_and_patch() {
    let app = TestClient::new(Router::new().route(
        "/x",
        post(|| async { "created" }).patch(|| async { "changed" }),
    ));
    let (s, b) = json_of(app.call(req("STORE", "/x")).await.unwrap()).await;
    assert_eq!((s, b.as_str()), (200, Some("created")));
    let (s, b) = json_of(app.call(req("UPDATE", "/x")).await.unwrap()).await;
    assert_eq!((s, b.as_str()), (200, Some("changed")));
}

#[tokio::test]
async fn stream_is_its_own_method() {
    let app = TestClient::new(Router::new().route(
        "/t",
        stream(|| async { JsonStream::new(futures_util::stream::iter([1, 2])) }),
    ));
    assert_eq!(app.call(req("GET", "/t")).await.unwrap().status(), 405);
    assert_eq!(app.call(req("STREAM", "/t")).await.unwrap().status(), 200);
}

#[tokio::test]
async fn nest_merge_fallback_and_state() {
    #[derive(Clone)]
    struct AppState {
        name: &'static str,
    }
    async fn name(State(s): State<AppState>) -> &'static str {
        s.name
    }
    async fn user(Path(id): Path<u32>) -> String {
        format!("user {id}")
    }
    let api = Router::new()
        .route("/users/{id}", get(user))
        .route("/", get(ok));
    let other = Router::new().route("/name", get(name));
    let app = Router::new()
        .nest("/api", api)
        .merge(other)
        .fallback(|| async { ApiError::not_found("custom fallback") })
        .with_state(AppState { name: "rrssh" });
    let app = TestClient::new(app);
    let text = |uri: &'static str| {
        let app = app.clone();
        async move { json_of(app.call(req("GET", uri)).await.unwrap()).await }
    };
    assert_eq!(text("/api/users/7").await.1, "user 7");
    assert_eq!(text("/api").await.1, "ok");
    assert_eq!(text("/name").await.1, "rrssh");
    let (status, body) = text("/missing").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["message"], "custom fallback");
}

#[tokio::test]
async fn catch_all_captures_the_rest() {
    async fn file(Path(rest): Path<String>) -> String {
        rest
    }
    let app = TestClient::new(Router::new().route("/files/{*rest}", get(file)));
    let (_, body) = json_of(app.call(req("GET", "/files/a/b%20c.txt")).await.unwrap()).await;
    assert_eq!(body, "a/b c.txt");
}

#[test]
#[should_panic(
    expected = "overlapping routes: `/users/{name}` conflicts with the existing route `/users/{id}`"
)]
fn overlapping_paths_panic_naming_both() {
    let _ = Router::<()>::new()
        .route("/users/{id}", get(ok))
        .route("/users/{name}", get(ok));
}

#[test]
#[should_panic(expected = "overlapping routes: `GET /a` is already routed")]
fn same_method_twice_panics() {
    let _ = Router::<()>::new()
        .route("/a", get(ok))
        .route("/a", get(ok));
}

#[test]
fn route_infos_come_from_attributes() {
    /// List users.
    ///
    /// Details that are not part of the summary.
    #[rrssh::get("/users")]
    async fn list_users(rrssh::Params(page): rrssh::Params<Page>) -> rrssh::Json<Vec<u32>> {
        rrssh::Json(vec![page.n])
    }
    #[derive(serde::Deserialize, serde::Serialize)]
    struct Page {
        n: u32,
    }
    let app: Router = Router::new().nest("/v1", Router::new().mount(rrssh::routes![list_users]));
    let info = app.route_infos()[0];
    assert_eq!(info.path, "/v1/users");
    assert_eq!(info.method, "GET");
    assert_eq!(info.summary, Some("List users."));
    assert_eq!(info.args[0].name, "page");
    assert_eq!(info.args[0].ty, "Page");
    assert_eq!(info.output, "rrssh::Json<Vec<u32>>");
}
