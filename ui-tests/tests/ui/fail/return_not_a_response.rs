struct NotAResponse;

#[rrssh::get("/x")]
async fn x() -> NotAResponse {
    NotAResponse
}

fn main() {}
