#[rrssh::api]
pub trait Inventory {
    #[get("/items")]
    async fn list(&self) -> rrssh::Json<Vec<u64>> {
        rrssh::Json(Vec::new())
    }
}

fn main() {}
