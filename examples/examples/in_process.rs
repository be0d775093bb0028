//! A small API defined with route attributes, called in-process through its typed client.
//!
//! Run with `cargo run --example in_process`.

use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use rrssh::test::TestClient;
use rrssh::{
    ApiError, Json, JsonStream, Params, Path, Peer, Router, State, StatusCode, delete, get, patch,
    post, routes, stream,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Todo {
    id: u64,
    title: String,
    done: bool,
    owner: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct NewTodo {
    title: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Change {
    done: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Filter {
    done: Option<bool>,
}

type Db = Arc<Mutex<Vec<Todo>>>;

/// List todos, optionally only done or open ones.
#[get("/todos")]
async fn list(Params(filter): Params<Filter>, State(db): State<Db>) -> Json<Vec<Todo>> {
    let todos = db.lock().unwrap();
    Json(
        todos
            .iter()
            .filter(|t| filter.done.is_none_or(|d| t.done == d))
            .cloned()
            .collect(),
    )
}

/// Create a todo owned by the caller.
#[post("/todos")]
async fn create(
    peer: Peer,
    State(db): State<Db>,
    Json(new): Json<NewTodo>,
) -> (StatusCode, Json<Todo>) {
    let mut todos = db.lock().unwrap();
    let todo = Todo {
        id: todos.len() as u64 + 1,
        title: new.title,
        done: false,
        owner: peer.user().to_owned(),
    };
    todos.push(todo.clone());
    (StatusCode::CREATED, Json(todo))
}

/// Mark a todo done or open.
#[patch("/todos/{id}")]
async fn change(
    Path(id): Path<u64>,
    State(db): State<Db>,
    Json(c): Json<Change>,
) -> Result<Json<Todo>, ApiError> {
    let mut todos = db.lock().unwrap();
    let todo = todos
        .iter_mut()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no todo {id}")))?;
    todo.done = c.done;
    Ok(Json(todo.clone()))
}

/// Delete a todo.
#[delete("/todos/{id}")]
async fn remove(Path(id): Path<u64>, State(db): State<Db>) -> StatusCode {
    db.lock().unwrap().retain(|t| t.id != id);
    StatusCode::NO_CONTENT
}

/// Stream the titles, one item each.
#[stream("/todos/titles")]
async fn titles(State(db): State<Db>) -> JsonStream<String> {
    let titles: Vec<String> = db.lock().unwrap().iter().map(|t| t.title.clone()).collect();
    JsonStream::new(futures_util::stream::iter(titles))
}

#[tokio::main]
async fn main() -> Result<(), rrssh::client::Error> {
    let app = Router::new()
        .mount(routes![list, create, change, remove, titles])
        .with_state(Db::default());
    for info in app.route_infos() {
        println!(
            "{:6} {:16} {}",
            info.method,
            info.path,
            info.summary.unwrap_or("")
        );
    }
    let client = TestClient::new(app);

    let a = create::call(
        &client,
        NewTodo {
            title: "write docs".into(),
        },
    )
    .await?;
    let b = create::call(
        &client,
        NewTodo {
            title: "ship".into(),
        },
    )
    .await?;
    println!("created {a:?}\ncreated {b:?}");
    let done = change::call(&client, a.id, Change { done: true }).await?;
    println!("changed {done:?}");
    let open = list::call(&client, Filter { done: Some(false) }).await?;
    println!(
        "open: {:?}",
        open.iter().map(|t| &t.title).collect::<Vec<_>>()
    );
    let mut stream = titles::call(&client).await?;
    while let Some(title) = stream.next().await {
        println!("title: {}", title?);
    }
    remove::call(&client, b.id).await?;
    match change::call(&client, b.id, Change { done: true }).await {
        Err(e) => println!("after delete: {e}"),
        Ok(t) => println!("unexpected: {t:?}"),
    }
    Ok(())
}
