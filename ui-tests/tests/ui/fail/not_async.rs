#[rrssh::get("/hello")]
fn hello() -> &'static str {
    "hello"
}

fn main() {}
