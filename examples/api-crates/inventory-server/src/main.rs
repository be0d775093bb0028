//! The inventory server: implements `inventory_api::Inventory`, serves it as an SSH server
//! (forward mode), and also runs a hub and registers with it as the service `inventory`
//! (reverse mode), so callers can reach it both ways. Keys go into the directory given as the
//! first argument (created if missing); prints where it listens, then serves until Ctrl-C.
//! `inventory-server --openapi` prints the API's OpenAPI document instead.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use inventory_api::{Filter, Inventory, Item, NewItem};
use rrssh::keys::{AuthorizedKeys, HostKeyPolicy, load_or_generate_ed25519};
use rrssh::{ApiError, Json, JsonStream, Params, Path, Peer, Server, StatusCode};

/// The items, in memory.
#[derive(Debug, Clone, Default)]
struct Memory(Arc<Mutex<Vec<Item>>>);

impl Inventory for Memory {
    async fn get_item(&self, Path(id): Path<u64>) -> Result<Json<Item>, ApiError> {
        let items = self.0.lock().unwrap_or_else(|e| e.into_inner());
        items
            .iter()
            .find(|i| i.id == id)
            .cloned()
            .map(Json)
            .ok_or_else(|| ApiError::not_found(format!("no item {id}")))
    }

    async fn list(&self, Params(f): Params<Filter>) -> Json<Vec<Item>> {
        let items = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Json(
            items
                .iter()
                .filter(|i| i.qty >= f.min_qty)
                .cloned()
                .collect(),
        )
    }

    async fn add(&self, peer: Peer, Json(new): Json<NewItem>) -> (StatusCode, Json<Item>) {
        let mut items = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let item = Item {
            id: items.len() as u64 + 1,
            name: new.name,
            qty: new.qty,
            added_by: peer.user().to_owned(),
        };
        items.push(item.clone());
        (StatusCode::CREATED, Json(item))
    }

    async fn countdown(&self, Path(n): Path<u32>) -> JsonStream<u32> {
        JsonStream::new(futures_util::stream::iter((0..=n).rev()))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().nth(1).as_deref() == Some("--openapi") {
        let doc = Memory::default().into_router().openapi("inventory", "1");
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "inventory-keys".into()),
    );
    std::fs::create_dir_all(&dir)?;
    let host = load_or_generate_ed25519(dir.join("host_ed25519"), "inventory-host")?;
    let caller = load_or_generate_ed25519(dir.join("caller_ed25519"), "caller")?;
    let service = load_or_generate_ed25519(dir.join("service_ed25519"), "inventory-service")?;
    // The caller logs in as `ops` and may call the service through the hub; the service key
    // owns the name `inventory`.
    let keys = format!(
        "rrssh-users=\"ops\",rrssh-scopes=\"call:inventory\" {}\nrrssh-users=\"svc\",rrssh-services=\"inventory\" {}\n",
        caller.public_key().to_openssh()?,
        service.public_key().to_openssh()?
    );
    let authorized = AuthorizedKeys::parse(&keys, "authorized_keys")?;
    let store = Memory::default();

    // Forward: an SSH server serving the trait.
    let forward = Server::new()
        .router(rrssh::Router::new().merge(store.clone().into_router()))
        .host_key(host.clone())
        .authorized_keys(authorized.clone())
        .bind("127.0.0.1:0")
        .await?;
    // Reverse: a hub, and this service connected to it under its name.
    let hub = Server::new()
        .host_key(host.clone())
        .authorized_keys(authorized)
        .relay(true)
        .bind("127.0.0.1:0")
        .await?;
    let _registered = rrssh::Client::builder(hub.local_addr().to_string())
        .user("svc")
        .identity(service)
        .host_keys(HostKeyPolicy::Pinned(host.public_key().clone()))
        .serve(store.into_router())
        .service_name("inventory")
        .connect_persistent();
    std::fs::write(
        dir.join("known_hosts"),
        format!(
            "[127.0.0.1]:{} {k}\n[127.0.0.1]:{} {k}\n",
            forward.local_addr().port(),
            hub.local_addr().port(),
            k = host.public_key().to_openssh()?
        ),
    )?;
    println!(
        "forward ssh://ops@{} hub hub://ops@{}/inventory",
        forward.local_addr(),
        hub.local_addr()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
