#[rrssh::api]
pub trait Inventory {
    #[get("/items")]
    async fn list(&self, limit: u32) -> rrssh::Json<Vec<u64>>;
}

fn main() {}
