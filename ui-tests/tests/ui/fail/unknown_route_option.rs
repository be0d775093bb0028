#[rrssh::get("/x", rank = 2)]
async fn x() {}

fn main() {}
