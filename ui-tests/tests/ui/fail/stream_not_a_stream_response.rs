use rrssh::Json;

#[rrssh::stream("/ticks")]
async fn ticks() -> Json<Vec<u32>> {
    Json(vec![1, 2, 3])
}

fn main() {}
