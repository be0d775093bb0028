//! The inventory API, as a light crate: the trait a server implements and callers call
//! (`InventoryClient`), and the types on the wire. It depends on `rrssh` without its `ssh`
//! feature, so callers that only need the types pay for no SSH stack.

use rrssh::{ApiError, Json, JsonStream, Params, Path, Peer, StatusCode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An item in stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Item {
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// How many are in stock.
    pub qty: u32,
    /// Who added it (the SSH user).
    pub added_by: String,
}

/// A new item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NewItem {
    /// Its name.
    pub name: String,
    /// How many.
    pub qty: u32,
}

/// Which items to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Filter {
    /// Only those with at least this many in stock.
    #[serde(default)]
    pub min_qty: u32,
}

/// The inventory service.
#[rrssh::api]
pub trait Inventory {
    /// One item by id, or 404.
    #[get("/items/{id}")]
    async fn get_item(&self, id: Path<u64>) -> Result<Json<Item>, ApiError>;

    /// The items, filtered.
    #[get("/items")]
    async fn list(&self, filter: Params<Filter>) -> Json<Vec<Item>>;

    /// Adds an item; the caller's SSH user is recorded.
    #[post("/items")]
    async fn add(&self, peer: Peer, item: Json<NewItem>) -> (StatusCode, Json<Item>);

    /// Counts down from `n`, one number at a time.
    #[stream("/countdown/{n}")]
    async fn countdown(&self, n: Path<u32>) -> JsonStream<u32>;
}
