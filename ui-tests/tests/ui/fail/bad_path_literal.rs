#[rrssh::get("/users/{id")]
async fn user() -> &'static str {
    "user"
}

fn main() {}
