use rrssh::{ApiError, Json, JsonStream, Path, Peer, StatusCode};

#[rrssh::api]
pub trait Counter {
    /// The count.
    #[get("/count/{id}")]
    async fn get(&self, id: Path<u64>) -> Result<Json<u64>, ApiError>;
    /// Adds.
    #[post("/count", scope = "write")]
    async fn add(&self, peer: Peer, by: Json<u64>) -> (StatusCode, Json<u64>);
    /// Ticks.
    #[stream("/ticks")]
    async fn ticks(&self) -> JsonStream<u64>;
}

#[derive(Clone)]
struct Mine;

impl Counter for Mine {
    async fn get(&self, Path(id): Path<u64>) -> Result<Json<u64>, ApiError> {
        Ok(Json(id))
    }
    async fn add(&self, _peer: Peer, Json(by): Json<u64>) -> (StatusCode, Json<u64>) {
        (StatusCode::CREATED, Json(by))
    }
    async fn ticks(&self) -> JsonStream<u64> {
        JsonStream::new(futures_util::stream::iter(0..3))
    }
}

fn main() {
    let _router: rrssh::Router = rrssh::Router::new().merge(Mine.into_router());
    let _client = CounterClient::new(rrssh::test::TestClient::new(Mine.into_router()));
}
