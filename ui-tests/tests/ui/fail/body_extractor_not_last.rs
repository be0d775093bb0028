use rrssh::{Json, Peer};

#[rrssh::post("/users")]
async fn create(Json(name): Json<String>, peer: Peer) -> String {
    format!("{name} {}", peer.user())
}

fn main() {}
