//! rrssh's side: a forward server, a hub with a reverse service, clients, streams.

#![allow(clippy::unwrap_used)]

use crate::*;

// ---------------------------------------------------------------- rrssh

pub(crate) fn app() -> Router {
    Router::new()
        .route(
            "/hello",
            get(|| async { Json(serde_json::json!({"msg": "Hello World!"})) }),
        )
        .route("/echo", post(|Json(v): Json<Value>| async move { Json(v) }))
        .route(
            "/bulk/{size}/{n}",
            stream(
                |rrssh::Path((size, n)): rrssh::Path<(usize, usize)>| async move {
                    // Each item is a JSON string of `size` bytes with its quotes and newline.
                    let item = "y".repeat(size - 3);
                    JsonStream::new(futures_util::stream::iter(
                        (0..n).map(move |_| item.clone()),
                    ))
                },
            ),
        )
        .route(
            "/bytes/{size}/{n}",
            get(
                |rrssh::Path((size, n)): rrssh::Path<(usize, usize)>| async move {
                    // `n` chunks of `size` bytes, as a file would be served.
                    let chunk = bytes::Bytes::from(vec![b'y'; size]);
                    rrssh::ByteStream::new(futures_util::stream::iter(
                        (0..n).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
                    ))
                },
            ),
        )
}

/// `streams` byte streams of `n` chunks of `size` bytes at once; bytes per second.
pub(crate) async fn rrssh_bytes(c: &Client, size: usize, n: usize, streams: usize) -> Figure {
    let start = Instant::now();
    let tasks: Vec<_> = (0..streams)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move {
                let res = c.get(&format!("/bytes/{size}/{n}")).send().await.unwrap();
                let mut s = rrssh::ByteStream::from_body(res.into_body());
                let mut got = 0;
                while let Some(b) = futures_util::StreamExt::next(&mut s).await {
                    got += b.unwrap().len();
                }
                got
            })
        })
        .collect();
    throughput(tasks, start).await
}

pub(crate) struct Rig {
    pub(crate) host: PrivateKey,
    pub(crate) key: PrivateKey,
    pub(crate) forward: Hub,
    pub(crate) hub: Hub,
    pub(crate) bare: std::net::SocketAddr,
}

pub(crate) async fn rig() -> Rig {
    let host = generate_ed25519("bench-host");
    let key = generate_ed25519("bench");
    let auth = AuthorizedKeys::from_keys([key.public_key().clone()]).owned_by("ada");
    let forward = Server::new()
        .router(app())
        .host_key(host.clone())
        .authorized_keys(auth.clone())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let hub = Server::new()
        .open_registration(true)
        .host_key(host.clone())
        .authorized_keys(auth)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let bare = bare_server(&host).await;
    Rig {
        host,
        key,
        forward,
        hub,
        bare,
    }
}

pub(crate) async fn rrssh_client(rig: &Rig, hub: &Hub, serve: Option<Router>) -> Client {
    let mut b = Client::builder(hub.local_addr().to_string())
        .user("ada")
        .identity(rig.key.clone())
        .host_keys(HostKeyPolicy::Pinned(rig.host.public_key().clone()));
    if let Some(r) = serve {
        b = b.serve(r).service_name("bench");
    }
    b.connect().await.unwrap()
}

/// `streams` concurrent STREAM calls of `n` items of `size` bytes each: bytes per second.
pub(crate) async fn rrssh_streams(c: &Client, size: usize, n: usize, streams: usize) -> Figure {
    let start = Instant::now();
    let tasks: Vec<_> = (0..streams)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move {
                let mut st = c
                    .stream(&format!("/bulk/{size}/{n}"))
                    .items::<String>()
                    .await
                    .unwrap();
                let mut got = 0;
                while let Some(i) = futures_util::StreamExt::next(&mut st).await {
                    got += i.unwrap().len() + 3;
                }
                got
            })
        })
        .collect();
    throughput(tasks, start).await
}
