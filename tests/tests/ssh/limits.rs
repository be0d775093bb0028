//! Server limits over SSH: each refuses the one over it with a clear error, and what is already
//! running is unaffected.

use std::sync::Arc;
use std::time::Duration;

use rrssh::Router;
use rrssh::client::{CallExt, Error};
use rrssh::keys::generate_ed25519;
use rrssh::routing::get;
use tokio::io::AsyncReadExt;

use super::{Keys, client, server_builder};

fn slow_router() -> Router {
    Router::new()
        .route("/quick", get(|| async { "quick" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(400)).await;
                "slow"
            }),
        )
}

#[tokio::test]
async fn one_connection_over_the_per_key_limit_is_refused_by_name() {
    let keys = Keys::new();
    let hub = server_builder(&keys)
        .router(slow_router())
        .max_connections_per_key(2)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let a = client(&keys, &hub).connect().await.unwrap();
    let b = client(&keys, &hub).connect().await.unwrap();
    let a2 = a.clone();
    let in_flight = tokio::spawn(async move { a2.get("/slow").receive_text().await });
    tokio::time::sleep(Duration::from_millis(50)).await;

    let third = client(&keys, &hub).connect().await;
    let err = match third {
        Ok(c) => c.get("/quick").receive_text().await.unwrap_err(),
        Err(e) => Error::Unavailable(e.to_string()),
    };
    println!("third connection: {err}");
    let Error::Unavailable(msg) = &err else {
        panic!("expected Unavailable, got {err:?}")
    };
    assert!(
        msg.contains("too many connections for key SHA256:"),
        "{msg}"
    );
    assert!(msg.contains("limit 2"), "{msg}");

    // The connections already open are unaffected.
    assert_eq!(in_flight.await.unwrap().unwrap(), "slow");
    assert_eq!(b.get("/quick").receive_text().await.unwrap(), "quick");

    // A slot frees when a connection closes.
    b.close().await;
    let mut again = None;
    for _ in 0..50 {
        let c = client(&keys, &hub).connect().await.unwrap();
        if let Ok(t) = c.get("/quick").receive_text().await {
            again = Some(t);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(again.as_deref(), Some("quick"));
}

#[tokio::test]
async fn one_connection_over_the_unauthenticated_limit_is_told_and_closed() {
    let keys = Keys::new();
    let hub = server_builder(&keys)
        .router(slow_router())
        .max_unauthenticated(2)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    // An authenticated connection first: the limit does not count it.
    let ok = client(&keys, &hub).connect().await.unwrap();

    // Two connections that never authenticate fill the handshake slots.
    let silent: Vec<_> = futures_util::future::join_all(
        (0..2).map(|_| tokio::net::TcpStream::connect(hub.local_addr())),
    )
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut third = tokio::net::TcpStream::connect(hub.local_addr())
        .await
        .unwrap();
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(5), third.read_to_string(&mut line))
        .await
        .expect("the refused connection is closed")
        .unwrap();
    println!("over the limit: {}", line.trim_end());
    assert!(
        line.starts_with("rrssh: too many unauthenticated connections (limit 2)"),
        "{line:?}"
    );
    let err = client(&keys, &hub).connect().await.unwrap_err();
    println!("client over the limit: {err}");

    // The authenticated connection kept working; the slots free when the silent ones go.
    assert_eq!(ok.get("/quick").receive_text().await.unwrap(), "quick");
    drop(silent);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let c = client(&keys, &hub).connect().await.unwrap();
    assert_eq!(c.get("/quick").receive_text().await.unwrap(), "quick");
}

pub(crate) struct AnyHost;

/// A raw russh session to `addr`, logged in as `user` with `key` (host key not checked).
pub(crate) async fn russh_login(
    addr: std::net::SocketAddr,
    user: &str,
    key: &rrssh::keys::PrivateKey,
) -> russh::client::Handle<AnyHost> {
    let config = Arc::new(russh::client::Config::default());
    let mut ssh = russh::client::connect(config, addr, AnyHost).await.unwrap();
    let auth = ssh
        .authenticate_publickey(
            user,
            russh::keys::PrivateKeyWithHashAlg::new(Arc::new(key.clone()), None),
        )
        .await
        .unwrap();
    assert!(auth.success(), "{user} logs in");
    ssh
}

impl russh::client::Handler for AnyHost {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

#[tokio::test]
async fn authentication_attempts_over_the_limit_end_the_connection() {
    let keys = Keys::new();
    let hub = server_builder(&keys)
        .router(slow_router())
        .max_auth_attempts(3)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let config = Arc::new(russh::client::Config::default());
    let mut ssh = russh::client::connect(config, hub.local_addr(), AnyHost)
        .await
        .unwrap();
    let mut refused = 0;
    let mut cut = None;
    for i in 0..8 {
        let wrong = Arc::new(generate_ed25519("intruder"));
        match ssh
            .authenticate_publickey(
                "mallory",
                russh::keys::PrivateKeyWithHashAlg::new(wrong, None),
            )
            .await
        {
            Ok(r) if !r.success() => refused += 1,
            Ok(_) => panic!("a wrong key was accepted"),
            Err(e) => {
                cut = Some((i, e));
                break;
            }
        }
    }
    let (at, e) = cut.expect("the server must cut a connection that keeps guessing");
    println!(
        "refused {refused} keys, then cut at attempt {}: {e}",
        at + 1
    );
    // The server refuses 3 attempts and answers the 4th with a disconnect, which the russh
    // client reports as one more refusal; the 5th finds the connection gone.
    assert!(refused <= 4, "{refused} attempts were allowed");
    assert!(at <= 4, "cut only at attempt {}", at + 1);
}
