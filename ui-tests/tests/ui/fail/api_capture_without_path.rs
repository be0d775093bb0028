#[rrssh::api]
pub trait Inventory {
    #[get("/items/{id}")]
    async fn get(&self) -> rrssh::Json<u64>;
}

fn main() {}
