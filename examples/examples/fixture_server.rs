//! A Rust rrssh server for the Python bindings' tests (`rrssh-python/tests`), and a Rust client
//! that calls Python handlers.
//!
//! `fixture_server serve DIR [PORT]` serves on 127.0.0.1 (PORT, else a free port; printed on
//! the first line) with
//! the host key `DIR/host` (made if missing) and the callers of `DIR/authorized_keys`: a few
//! routes, the hub relay (reverse services may join), terminals running `/bin/sh` (for the keys
//! granted one: `pty` or `rrssh-scopes="terminal"`), and local
//! tunnels to 127.0.0.1. It runs
//! until its standard input closes.
//!
//! `fixture_server call PORT KEY HOSTPUB PATH` calls `GET PATH` with rrssh's Rust client and
//! prints the JSON answer; `fixture_server call PORT KEY HOSTPUB PATH PEER` calls it on the hub's
//! peer `PEER`.

use std::time::Duration;

use futures_util::StreamExt;
use rrssh::client::CallExt;
use rrssh::keys::{AuthorizedKeys, HostKeyPolicy};
use rrssh::routing::{get, post, stream};
use rrssh::{ApiError, Client, Json, JsonStream, Path, Peer, Router, Server, StatusCode};
use serde_json::{Value, json};

fn routes() -> Router {
    Router::new()
        .route(
            "/hello",
            get(|| async { Json(json!({"msg": "Hello World!"})) }),
        )
        .route("/echo", post(|Json(v): Json<Value>| async move { Json(v) }))
        .route(
            "/whoami",
            get(|peer: Peer| async move {
                Json(json!({"user": peer.user(), "fingerprint": peer.fingerprint()}))
            }),
        )
        .route(
            "/slow/{ms}",
            get(|Path(ms): Path<u64>| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Json(json!({"slept_ms": ms}))
            }),
        )
        .route(
            "/fail/{status}",
            get(|Path(status): Path<u16>| async move {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                Err::<Json<Value>, _>(
                    ApiError::new(status, "failed on purpose")
                        .with_detail(json!({"asked": status.as_u16()})),
                )
            }),
        )
        .route(
            "/ticks/{ms}",
            stream(|Path(ms): Path<u64>| async move {
                let every = tokio::time::interval(Duration::from_millis(ms.max(1)));
                let ticks =
                    futures_util::stream::unfold((every, 0u64), |(mut every, i)| async move {
                        every.tick().await;
                        Some((json!({"i": i}), (every, i + 1)))
                    });
                JsonStream::new(ticks)
            }),
        )
        .route(
            "/count/{n}",
            stream(|Path(n): Path<u64>| async move {
                JsonStream::new(futures_util::stream::iter(0..n).map(|i| json!({"i": i})))
            }),
        )
}

async fn serve(dir: &std::path::Path, port: u16) -> Result<(), Box<dyn std::error::Error>> {
    let host = rrssh::keys::load_or_generate_ed25519(dir.join("host"), "fixture-host")?;
    let keys = AuthorizedKeys::load(dir.join("authorized_keys"))?
        .owned_by(std::env::var("USER").unwrap_or_else(|_| "rrssh".into()));
    let server = Server::new()
        .router(routes())
        .relay(true)
        .terminal(rrssh::terminal::Terminal::shell("/bin/sh"))
        .permit_open(rrssh::tunnel::PermitOpen::parse("127.0.0.1:*")?)
        .host_key(host)
        .authorized_keys(keys)
        .bind(("127.0.0.1", port))
        .await?;
    println!("{}", server.local_addr().port());
    // Until the test closes our standard input.
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink)
    })
    .await;
    server.shutdown(Duration::from_secs(1)).await;
    Ok(())
}

async fn call(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let [port, key, host_pub, path, rest @ ..] = args else {
        return Err("call PORT KEY HOSTPUB PATH [PEER]".into());
    };
    let key = rrssh::keys::load_private_key(key, None)?;
    let host = rrssh::keys::PublicKey::from_openssh(std::fs::read_to_string(host_pub)?.trim())?;
    let client = Client::builder(format!("127.0.0.1:{port}"))
        .user(std::env::var("USER").unwrap_or_else(|_| "rrssh".into()))
        .identity(key)
        .host_keys(HostKeyPolicy::Pinned(host))
        .connect()
        .await?;
    let target = match rest.first() {
        Some(peer) => format!("/.well-known/rrssh/peers/{peer}{path}"),
        None => path.clone(),
    };
    let answer: Value = client.get(&target).receive().await?;
    println!("{answer}");
    client.close().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") if args.len() == 2 => serve(std::path::Path::new(&args[1]), 0).await,
        Some("serve") if args.len() == 3 => {
            serve(std::path::Path::new(&args[1]), args[2].parse()?).await
        }
        Some("call") => call(&args[1..]).await,
        _ => {
            Err("usage: fixture_server serve DIR [PORT] | call PORT KEY HOSTPUB PATH [PEER]".into())
        }
    }
}
