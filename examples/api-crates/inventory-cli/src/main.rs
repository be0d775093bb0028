//! Calls the inventory API with the typed client generated from `inventory_api::Inventory`:
//! `inventory-cli KEYS_DIR ssh://ops@HOST:PORT` (the server) or
//! `inventory-cli KEYS_DIR hub://ops@HOST:PORT/inventory` (the service through a hub). It
//! compiles no handler and no server code of the service.

use futures_util::StreamExt as _;
use inventory_api::{Filter, InventoryClient, NewItem};
use rrssh::client::Call;
use rrssh::keys::{HostKeyPolicy, load_private_key};

/// Adds an item, reads it back, lists, and counts down, printing each answer.
async fn exercise<C: Call>(api: &InventoryClient<C>) -> Result<(), rrssh::client::Error> {
    let added = api
        .add(NewItem {
            name: "bolts".into(),
            qty: 40,
        })
        .await?;
    println!("added {added:?}");
    println!("got {:?}", api.get_item(added.id).await?);
    println!("listed {:?}", api.list(Filter { min_qty: 10 }).await?);
    match api.get_item(9999).await {
        Err(e) => println!("missing: {e}"),
        Ok(i) => println!("unexpected {i:?}"),
    }
    let mut ticks = api.countdown(3).await?;
    let mut seen = Vec::new();
    while let Some(n) = ticks.next().await {
        seen.push(n?);
    }
    println!("countdown {seen:?}");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(target)) = (args.next(), args.next()) else {
        return Err(
            "usage: inventory-cli KEYS_DIR ssh://ops@HOST:PORT | hub://ops@HOST:PORT/NAME".into(),
        );
    };
    let dir = std::path::PathBuf::from(dir);
    let (hub, rest) = match target.split_once("://") {
        Some(("ssh", r)) => (false, r),
        Some(("hub", r)) => (true, r),
        _ => return Err(format!("bad target {target}").into()),
    };
    let (user, rest) = rest.split_once('@').unwrap_or(("ops", rest));
    let (addr, peer) = match rest.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (rest, None),
    };
    let client = rrssh::Client::builder(addr)
        .user(user)
        .identity(load_private_key(dir.join("caller_ed25519"), None)?)
        .host_keys(HostKeyPolicy::Strict(dir.join("known_hosts")))
        .connect()
        .await?;
    match (hub, peer) {
        (false, _) => exercise(&InventoryClient::new(client)).await?,
        (true, Some(peer)) => {
            // Through the hub: the same client, with calls under the hub's relay path.
            let prefix = format!("{}/{peer}", rrssh::hub::relay::PEERS_PATH);
            let via = tower::ServiceExt::map_request(client, move |mut req: rrssh::Request| {
                let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
                if let Ok(uri) = format!("{prefix}{pq}").parse() {
                    *req.uri_mut() = uri;
                }
                req
            });
            exercise(&InventoryClient::new(via)).await?;
        }
        (true, None) => return Err("hub:// targets name a peer".into()),
    }
    Ok(())
}
