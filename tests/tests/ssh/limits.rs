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

/// A body a handler read whole stays charged to the key while the handler holds it, on every
/// connection of that key: a second body that would pass the key's budget is refused with 429
/// on another connection, and taken once the first call is over. The server's gauge shows it.
#[tokio::test]
async fn a_held_body_counts_for_its_key_until_the_call_is_over() {
    let keys = Keys::new();
    let release = Arc::new(tokio::sync::Notify::new());
    let gate = release.clone();
    let router = Router::new().route(
        "/hold",
        rrssh::routing::post(move |b: bytes::Bytes| {
            let gate = gate.clone();
            async move {
                gate.notified().await;
                b.len().to_string()
            }
        }),
    );
    let hub = server_builder(&keys)
        .router(router)
        .per_key_memory(12 << 20)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let gauge = hub.memory().unwrap();
    let (a, b) = (
        client(&keys, &hub).connect().await.unwrap(),
        client(&keys, &hub).connect().await.unwrap(),
    );
    let first = tokio::spawn(async move {
        a.post("/hold")
            .body(vec![1u8; 7 << 20])
            .receive_text()
            .await
    });
    assert!(super::eventually(Duration::from_secs(10), || gauge.held() >= 7 << 20).await);
    let held = gauge.held();
    println!("held while the handler waits: {held} bytes");
    let refused = b.post("/hold").body(vec![2u8; 7 << 20]).send().await;
    let status = match refused {
        Ok(res) => res.status().as_u16(),
        Err(Error::Status { status, body }) => {
            assert!(body.message.contains("per_key_memory"), "{}", body.message);
            status.as_u16()
        }
        Err(e) => panic!("{e}"),
    };
    assert_eq!(status, 429, "a second body past the key's budget");
    release.notify_one();
    assert_eq!(first.await.unwrap().unwrap(), (7 << 20).to_string());
    assert!(super::eventually(Duration::from_secs(5), || gauge.held() == 0).await);
    let again = tokio::spawn({
        let b = b.clone();
        async move {
            b.post("/hold")
                .body(vec![3u8; 7 << 20])
                .receive_text()
                .await
        }
    });
    assert!(super::eventually(Duration::from_secs(10), || gauge.held() >= 7 << 20).await);
    release.notify_one();
    assert_eq!(again.await.unwrap().unwrap(), (7 << 20).to_string());
}
