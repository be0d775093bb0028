//! Reverse mode, REST Reverse SSH's usage: the API side (`/home`, `/create`, `/stream`) sits
//! behind NAT and dials out, as an SSH client, to a hub; the hub waits for connections and calls
//! the service through the connection the service opened.
//!
//! ```sh
//! cargo run --example reverse                  # hub on 127.0.0.1:8022 and a service, then exit
//! cargo run --example reverse -- hub           # wait for services and call each one that connects
//! cargo run --example reverse -- service       # dial the hub and serve until Ctrl-C
//! ```
//!
//! Keys live in `./rrssh-example-keys` (created on first run, OpenSSH formats).

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use rrssh::hub::HubEvent;
use rrssh::keys::{AuthorizedKeys, HostKeyPolicy, PrivateKey, load_or_generate_ed25519};
use rrssh::{Client, Hub, Json, JsonStream, Router, Server, get, post, routes, stream};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const ADDR: &str = "127.0.0.1:8022";
const NAME: &str = "home-service";

#[derive(Debug, Serialize, Deserialize)]
struct Home {
    home: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Created {
    status: String,
}

/// The home resource.
#[get("/home")]
async fn home() -> Json<Home> {
    Json(Home {
        home: "router".into(),
    })
}

/// Stores whatever JSON it is sent.
#[post("/create")]
async fn create(Json(data): Json<Value>) -> Json<Created> {
    println!("service: stored {data}");
    Json(Created {
        status: "OK".into(),
    })
}

/// Ten numbers, one every 100 ms.
#[stream("/stream")]
async fn numbers() -> JsonStream<u32> {
    JsonStream::new(futures_util::stream::iter(0..10).then(|i| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        i
    }))
}

fn key(dir: &Path, name: &str, comment: &str) -> Result<PrivateKey, rrssh::keys::KeyError> {
    load_or_generate_ed25519(dir.join(name), comment)
}

fn keys_dir() -> PathBuf {
    PathBuf::from("rrssh-example-keys")
}

async fn hub() -> Result<Hub, Box<dyn std::error::Error>> {
    let dir = keys_dir();
    let host = key(&dir, "host_ed25519", "reverse-example-hub")?;
    key(&dir, "service_ed25519", "reverse-example-service")?;
    let authorized = dir.join("hub_authorized_keys");
    std::fs::write(
        &authorized,
        format!(
            "rrssh-users=\"service\",rrssh-services=\"*\" {}",
            std::fs::read_to_string(dir.join("service_ed25519.pub"))?
        ),
    )?;
    let hub = Server::new()
        .host_key(host)
        .authorized_keys(AuthorizedKeys::load(&authorized)?)
        .bind(ADDR)
        .await?;
    println!("hub: waiting for services on {}", hub.local_addr());
    Ok(hub)
}

/// What the hub does with each service that connects: call its three routes.
async fn call_service(hub: &Hub, name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let svc = hub.peer(name);
    println!("hub: GET /home -> {:?}", home::call(&svc).await?);
    let created = create::call(&svc, serde_json::json!({"name": "rrssh", "kind": "demo"})).await?;
    println!("hub: POST /create -> {created:?}");
    let mut items = numbers::call(&svc).await?;
    print!("hub: STREAM /stream ->");
    while let Some(n) = items.next().await {
        print!(" {}", n?);
    }
    println!();
    Ok(())
}

async fn service() -> Result<Client, Box<dyn std::error::Error>> {
    let dir = keys_dir();
    let client = Client::builder(ADDR)
        .user("service")
        .identity(key(&dir, "service_ed25519", "reverse-example-service")?)
        .host_keys(HostKeyPolicy::AcceptNew(dir.join("service_known_hosts")))
        .serve(Router::new().mount(routes![home, create, numbers]))
        .service_name(NAME)
        .connect()
        .await?;
    println!("service: connected to the hub as `{NAME}`");
    Ok(client)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    match std::env::args().nth(1).as_deref() {
        Some("hub") => {
            let hub = hub().await?;
            let mut events = hub.events();
            while let Some(event) = events.next().await {
                println!("hub: {event:?}");
                if let HubEvent::Connected {
                    name: Some(name), ..
                } = event
                    && let Err(e) = call_service(&hub, &name).await
                {
                    println!("hub: calling {name} failed: {e}");
                }
            }
        }
        Some("service") => {
            let _client = service().await?;
            tokio::signal::ctrl_c().await?;
        }
        None => {
            let hub = hub().await?;
            let mut events = hub.events();
            let client = service().await?;
            if let Some(event) = events.next().await {
                println!("hub: {event:?}");
            }
            call_service(&hub, NAME).await?;
            client.close().await;
            hub.shutdown(std::time::Duration::from_secs(5)).await;
        }
        Some(other) => return Err(format!("unknown mode `{other}`: use hub or service").into()),
    }
    Ok(())
}
