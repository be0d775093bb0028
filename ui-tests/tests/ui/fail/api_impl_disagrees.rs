use rrssh::{Json, Path};

#[rrssh::api]
pub trait Inventory {
    #[get("/items/{id}")]
    async fn get(&self, id: Path<u64>) -> Json<u64>;
}

#[derive(Clone)]
struct Mine;

// The server changed the type; the shared trait did not.
impl Inventory for Mine {
    async fn get(&self, Path(id): Path<String>) -> Json<u64> {
        Json(id.len() as u64)
    }
}

fn main() {}
