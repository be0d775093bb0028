#[rrssh::api]
pub trait Inventory {
    #[rrssh::get("/items")]
    async fn list(&self) -> rrssh::Json<Vec<u64>>;
    async fn count(&self) -> rrssh::Json<u64>;
}

fn main() {}
