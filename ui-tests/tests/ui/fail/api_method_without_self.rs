#[rrssh::api]
pub trait Inventory {
    #[get("/items")]
    async fn list() -> rrssh::Json<Vec<u64>>;
}

fn main() {}
