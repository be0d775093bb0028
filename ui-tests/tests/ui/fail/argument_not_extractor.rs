struct NotAnExtractor;

#[rrssh::get("/x")]
async fn x(_n: NotAnExtractor) -> &'static str {
    "x"
}

fn main() {}
