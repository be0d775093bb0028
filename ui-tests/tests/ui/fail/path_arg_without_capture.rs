use rrssh::Path;

#[rrssh::get("/users")]
async fn user(Path(id): Path<u64>) -> String {
    id.to_string()
}

fn main() {}
