//! The rrssh tour on loopback, with freshly generated keys: a hub, a reverse-mode service that
//! dials it, and a forward-mode server, called through typed clients in both directions.
//!
//! Run with `cargo run --example demo`. `cargo run --example demo -- serve` instead serves the
//! inventory on 127.0.0.1:8022 until Ctrl-C, for the `rrssh` command-line tool (keys in
//! `./rrssh-example-keys`); `-- openapi` prints the inventory's OpenAPI document.

use std::time::Duration;

use futures_util::StreamExt;
use rrssh::keys::{AuthorizedKeys, HostKeyPolicy, generate_ed25519, write_key_pair};
use rrssh::{
    ApiError, Client, Json, JsonStream, Params, Path, Peer, Router, Server, State, StatusCode,
};
use rrssh::{delete, get, patch, post, routes, stream};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
struct Item {
    id: u64,
    name: String,
    qty: u32,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct NewItem {
    name: String,
    qty: u32,
}

#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
struct Query {
    min_qty: Option<u32>,
}

type Store = Arc<Mutex<Vec<Item>>>;

/// List items, optionally with a minimum quantity.
#[get("/items")]
async fn list_items(Params(q): Params<Query>, State(store): State<Store>) -> Json<Vec<Item>> {
    let items = store.lock().unwrap();
    Json(
        items
            .iter()
            .filter(|i| q.min_qty.is_none_or(|m| i.qty >= m))
            .cloned()
            .collect(),
    )
}

/// Add an item.
#[post("/items")]
async fn add_item(
    State(store): State<Store>,
    Json(new): Json<NewItem>,
) -> (StatusCode, Json<Item>) {
    let mut items = store.lock().unwrap();
    let item = Item {
        id: items.len() as u64 + 1,
        name: new.name,
        qty: new.qty,
    };
    items.push(item.clone());
    (StatusCode::CREATED, Json(item))
}

/// Change an item's quantity.
#[patch("/items/{id}")]
async fn set_qty(
    Path(id): Path<u64>,
    State(store): State<Store>,
    Json(qty): Json<u32>,
) -> Result<Json<Item>, ApiError> {
    let mut items = store.lock().unwrap();
    let item = items
        .iter_mut()
        .find(|i| i.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no item {id}")))?;
    item.qty = qty;
    Ok(Json(item.clone()))
}

/// Remove an item.
#[delete("/items/{id}")]
async fn remove_item(Path(id): Path<u64>, State(store): State<Store>) -> StatusCode {
    store.lock().unwrap().retain(|i| i.id != id);
    StatusCode::NO_CONTENT
}

/// Stream a countdown, one item every 20 ms.
#[stream("/countdown/{from}")]
async fn countdown(Path(from): Path<u32>) -> JsonStream<u32> {
    JsonStream::new(
        futures_util::stream::iter((0..=from).rev()).then(|n| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            n
        }),
    )
}

/// Who is calling (served by the hub, called by the service).
#[get("/whoami")]
async fn whoami(peer: Peer) -> String {
    format!("you are `{}` with key {}", peer.user(), peer.fingerprint())
}

fn inventory() -> Router {
    Router::new()
        .mount(routes![
            list_items,
            add_item,
            set_qty,
            remove_item,
            countdown
        ])
        .with_state(Store::default())
}

/// Serves the inventory on 127.0.0.1:8022 until Ctrl-C, with keys in `./rrssh-example-keys`.
async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from("rrssh-example-keys");
    std::fs::create_dir_all(&dir)?;
    let host = rrssh::keys::load_or_generate_ed25519(dir.join("host_ed25519"), "demo-host")?;
    rrssh::keys::load_or_generate_ed25519(dir.join("id_ed25519"), "demo-client")?;
    // Keys without `rrssh-users` log in as the account running the server, as the keys in
    // its ~/.ssh/authorized_keys do under sshd.
    let me = std::env::var("USER").unwrap_or_else(|_| "rrssh".to_owned());
    let authorized = AuthorizedKeys::parse(
        &std::fs::read_to_string(dir.join("id_ed25519.pub"))?,
        "id_ed25519.pub",
    )?
    .owned_by(me);
    let server = Server::new()
        .router(inventory())
        .host_key(host)
        .authorized_keys(authorized)
        .bind("127.0.0.1:8022")
        .await?;
    println!(
        "serving the inventory on {} (key for callers: {}/id_ed25519); Ctrl-C stops",
        server.local_addr(),
        dir.display()
    );
    tokio::signal::ctrl_c().await?;
    server.shutdown(Duration::from_secs(5)).await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    match std::env::args().nth(1).as_deref() {
        Some("serve") => return serve().await,
        Some("openapi") => {
            let doc = inventory().openapi("rrssh demo inventory", "1");
            println!("{}", serde_json::to_string_pretty(&doc)?);
            return Ok(());
        }
        _ => {}
    }
    // Keys, in OpenSSH's formats, in a scratch directory.
    let dir = std::env::temp_dir().join(format!("rrssh-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let host_key = generate_ed25519("demo-host");
    let service_key = generate_ed25519("inventory@demo");
    write_key_pair(&host_key, dir.join("host_ed25519"))?;
    write_key_pair(&service_key, dir.join("id_ed25519"))?;
    // The key may log in under these two names only.
    std::fs::write(
        dir.join("authorized_keys"),
        format!(
            "rrssh-users=\"inventory,caller\",rrssh-services=\"inventory\" {}",
            std::fs::read_to_string(dir.join("id_ed25519.pub"))?
        ),
    )?;
    let authorized = AuthorizedKeys::load(dir.join("authorized_keys"))?;
    let known_hosts = HostKeyPolicy::AcceptNew(dir.join("known_hosts"));
    println!("keys in {}", dir.display());

    // 1. Reverse mode: a hub, and a service behind "NAT" that dials out to it.
    let hub = Server::new()
        .router(Router::new().mount(routes![whoami]))
        .host_key(host_key.clone())
        .authorized_keys(authorized.clone())
        .bind("127.0.0.1:0")
        .await?;
    println!("hub listening on {}", hub.local_addr());
    let mut events = hub.events();
    let service = Client::builder(hub.local_addr().to_string())
        .user("inventory")
        .identity(service_key.clone())
        .host_keys(known_hosts.clone())
        .serve(inventory())
        .service_name("inventory")
        .connect()
        .await?;
    if let Some(event) = events.next().await {
        println!("hub event: {event:?}");
    }

    let inv = hub.peer("inventory");
    let apples = add_item::call(
        &inv,
        NewItem {
            name: "apples".into(),
            qty: 3,
        },
    )
    .await?;
    let pears = add_item::call(
        &inv,
        NewItem {
            name: "pears".into(),
            qty: 10,
        },
    )
    .await?;
    println!("hub → service POST   /items        {apples:?}");
    println!("hub → service POST   /items        {pears:?}");
    let changed = set_qty::call(&inv, apples.id, 12).await?;
    println!("hub → service PATCH  /items/{}      {changed:?}", apples.id);
    let many = list_items::call(&inv, Query { min_qty: Some(11) }).await?;
    println!("hub → service GET    /items?min_qty=11 {many:?}");
    remove_item::call(&inv, pears.id).await?;
    println!("hub → service DELETE /items/{}", pears.id);
    let mut ticks = countdown::call(&inv, 5).await?;
    print!("hub → service STREAM /countdown/5 ");
    while let Some(n) = ticks.next().await {
        print!("{} ", n?);
    }
    println!();
    match set_qty::call(&inv, 99, 1).await {
        Err(e) => println!("hub → service PATCH  /items/99     error: {e}"),
        Ok(i) => println!("unexpected {i:?}"),
    }
    // The other direction, on the same connection.
    println!(
        "service → hub GET    /whoami       {}",
        whoami::call(&service).await?
    );

    // 2. Forward mode: the API side is the SSH server; a caller connects to it.
    let server = Server::new()
        .router(inventory())
        .host_key(host_key)
        .authorized_keys(authorized)
        .bind("127.0.0.1:0")
        .await?;
    let caller = Client::builder(server.local_addr().to_string())
        .user("caller")
        .identity(service_key)
        .host_keys(known_hosts)
        .connect()
        .await?;
    let made = add_item::call(
        &caller,
        NewItem {
            name: "plums".into(),
            qty: 7,
        },
    )
    .await?;
    println!("caller → server POST /items        {made:?}");
    println!(
        "caller → server GET  /items        {:?}",
        list_items::call(&caller, Query::default()).await?
    );

    caller.close().await;
    service.close().await;
    drop(server);
    drop(hub);
    std::fs::remove_dir_all(&dir)?;
    println!("done");
    Ok(())
}
