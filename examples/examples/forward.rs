//! Forward mode, korv's usage: the API side is an SSH server with `/hello` and `/echo`; a client
//! connects with its key and calls them.
//!
//! ```sh
//! cargo run --example forward                  # both sides on 127.0.0.1:8022, then exit
//! cargo run --example forward -- server        # serve until Ctrl-C
//! cargo run --example forward -- client        # call a running server
//! ```
//!
//! Keys live in `./rrssh-example-keys` (created on first run, OpenSSH formats): the server's
//! `host_ed25519`, the client's `id_ed25519`, the server's `authorized_keys` and the client's
//! `known_hosts` (the host key is recorded on first use, and a changed one is refused).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rrssh::client::CallExt as _;
use rrssh::keys::{AuthorizedKeys, HostKeyPolicy, PrivateKey, load_or_generate_ed25519};
use rrssh::{Client, Json, Params, Router, Server, get, routes};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const ADDR: &str = "127.0.0.1:8022";

#[derive(Debug, Serialize, Deserialize)]
struct Msg {
    msg: String,
}

/// Callback for the /hello endpoint.
#[get("/hello")]
async fn hello() -> Json<Msg> {
    Json(Msg {
        msg: "Hello World!".into(),
    })
}

/// Callback for the /echo endpoint: answers with what it was sent.
#[get("/echo")]
async fn echo(Params(request): Params<BTreeMap<String, String>>) -> Json<Msg> {
    Json(Msg {
        msg: format!("{request:?}"),
    })
}

fn key(dir: &Path, name: &str, comment: &str) -> Result<PrivateKey, rrssh::keys::KeyError> {
    load_or_generate_ed25519(dir.join(name), comment)
}

fn keys_dir() -> PathBuf {
    PathBuf::from("rrssh-example-keys")
}

async fn server() -> Result<rrssh::Hub, Box<dyn std::error::Error>> {
    let dir = keys_dir();
    let host = key(&dir, "host_ed25519", "forward-example-host")?;
    key(&dir, "id_ed25519", "forward-example-client")?;
    // The client's public key is the only authorized one, logging in as `example`.
    let authorized = dir.join("authorized_keys");
    std::fs::write(
        &authorized,
        format!(
            "rrssh-users=\"example\" {}",
            std::fs::read_to_string(dir.join("id_ed25519.pub"))?
        ),
    )?;
    let hub = Server::new()
        .router(Router::new().mount(routes![hello, echo]))
        .host_key(host)
        .authorized_keys(AuthorizedKeys::load(&authorized)?)
        .bind(ADDR)
        .await?;
    println!("serving /hello and /echo on {}", hub.local_addr());
    Ok(hub)
}

async fn client() -> Result<(), Box<dyn std::error::Error>> {
    let dir = keys_dir();
    let k = Client::builder(ADDR)
        .user("example")
        .identity(key(&dir, "id_ed25519", "forward-example-client")?)
        .host_keys(HostKeyPolicy::AcceptNew(dir.join("known_hosts")))
        .connect()
        .await?;
    let Msg { msg } = hello::call(&k).await?;
    println!("GET /hello -> {msg}");
    let Msg { msg } = echo::call(
        &k,
        BTreeMap::from([("name".into(), "rrssh".into()), ("n".into(), "3".into())]),
    )
    .await?;
    println!("GET /echo?name=rrssh&n=3 -> {msg}");
    // Untyped calls work too, like korv's `k.get('/hello', ...)`.
    let raw: Value = k.get("/hello").receive().await?;
    println!("GET /hello (untyped) -> {raw}");
    k.close().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    match std::env::args().nth(1).as_deref() {
        Some("server") => {
            let _hub = server().await?;
            tokio::signal::ctrl_c().await?;
        }
        Some("client") => client().await?,
        None => {
            let hub = server().await?;
            client().await?;
            hub.shutdown(std::time::Duration::from_secs(5)).await;
        }
        Some(other) => return Err(format!("unknown mode `{other}`: use server or client").into()),
    }
    Ok(())
}
