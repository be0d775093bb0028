use rrssh::{Bytes, Json, JsonStream, Params, Path, Peer, Router, State, StatusCode};
use serde::{Deserialize, Serialize};

#[derive(Clone)]
struct AppState;

#[derive(Serialize, Deserialize)]
struct Q {
    page: u32,
}

/// Reads.
#[rrssh::get("/a/{id}")]
async fn read(Path(id): Path<u64>, Params(q): Params<Q>, _s: State<AppState>, _p: Peer) -> Json<(u64, u32)> {
    Json((id, q.page))
}

#[rrssh::post("/a")]
async fn create(Json(v): Json<Q>) -> (StatusCode, Json<Q>) {
    (StatusCode::CREATED, Json(v))
}

#[rrssh::put("/a/{id}")]
async fn replace(Path(_id): Path<u64>, _body: Bytes) -> StatusCode {
    StatusCode::NO_CONTENT
}

#[rrssh::patch("/a/{id}")]
async fn change(Path(_id): Path<u64>, text: String) -> String {
    text
}

#[rrssh::delete("/a/{id}")]
async fn remove(Path(_id): Path<u64>) -> Result<(), rrssh::ApiError> {
    Ok(())
}

#[rrssh::stream("/a/{id}/events")]
async fn events(Path(id): Path<u64>) -> Result<JsonStream<u64>, StatusCode> {
    Ok(JsonStream::new(futures_util::stream::iter([id])))
}

#[rrssh::route(OPTIONS, "/a")]
async fn opts() -> impl rrssh::IntoResponse {
    "options"
}

pub mod nested {
    #[rrssh::get("/n/{*rest}")]
    pub async fn rest(rrssh::Path(rest): rrssh::Path<String>) -> String {
        rest
    }
}

fn main() {
    let _app: Router = Router::new()
        .mount(rrssh::routes![read, create, replace, change, remove, events, opts, nested::rest])
        .with_state(AppState);
    // The function stays callable under its own name.
    let _future = change(Path(1), String::new());
    let _ = <read as rrssh::routing::RouteDef>::INFO;
}
