//! TCP tunnels (local forwarding) through an rrssh server: data both ways, half-close,
//! permissions from the server and from `authorized_keys`, and persistence across reconnects.

use std::time::Duration;

use rrssh::client::CallExt as _;
use rrssh::keys::AuthorizedKeys;
use rrssh::transport::Backoff;
use rrssh::tunnel::PermitOpen;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{Keys, client, eventually, server_builder};

/// A TCP echo server on 127.0.0.1; each connection gets back what it sent, then EOF.
async fn echo_server() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// Starts a server on `addr` again once the port is free, and says when it did.
async fn restart<F, Fut>(start: F) -> (rrssh::Hub, std::time::Instant)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<rrssh::Hub, rrssh::server::ServerError>>,
{
    loop {
        match start().await {
            Ok(h) => return (h, std::time::Instant::now()),
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Sends `data` through `addr`, half-closes, and reads everything back.
async fn round_trip(addr: std::net::SocketAddr, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(addr).await?;
    let (mut r, mut w) = s.split();
    let data = data.to_vec();
    let write = async move {
        w.write_all(&data).await?;
        w.shutdown().await
    };
    let mut back = Vec::new();
    let read = r.read_to_end(&mut back);
    let (a, b) = tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(write, read) })
        .await
        .expect("the tunnel must not hang");
    a?;
    b?;
    Ok(back)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_forward_carries_bytes_both_ways() {
    let keys = Keys::new();
    let target = echo_server().await;
    let hub = server_builder(&keys)
        .permit_open(PermitOpen::parse(&target.to_string()).unwrap())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let c = client(&keys, &hub).connect().await.unwrap();
    let fwd = c
        .forward_local("127.0.0.1:0", "127.0.0.1", target.port())
        .await
        .unwrap();

    let data: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
    let started = std::time::Instant::now();
    let back = round_trip(fwd.local_addr(), &data).await.unwrap();
    let took = started.elapsed();
    assert!(
        back == data,
        "4 MiB came back changed ({} bytes)",
        back.len()
    );
    println!(
        "4 MiB echoed through the tunnel in {} ms ({:.0} MB/s each way)",
        took.as_millis(),
        4.0 * 1.048_576 / took.as_secs_f64()
    );

    // Many at once, and the rrssh calls on the same connection still work.
    let tasks: Vec<_> = (0..20u8)
        .map(|i| {
            let addr = fwd.local_addr();
            tokio::spawn(async move { round_trip(addr, &[i; 1000]).await.unwrap() == [i; 1000] })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap());
    }
    assert_eq!(fwd.opened(), 21);
    assert_eq!(fwd.refused(), 0);

    // Closing the forward stops the listener.
    let addr = fwd.local_addr();
    fwd.close();
    assert!(stops_listening(addr, Duration::from_secs(2)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnels_are_refused_unless_permitted() {
    let target = echo_server().await;
    let other = echo_server().await;
    let keys = Keys::new();
    let key = keys.client.public_key().to_openssh().unwrap();
    let check = |line: String, permit: PermitOpen| {
        let keys = Keys {
            host: keys.host.clone(),
            client: keys.client.clone(),
        };
        async move {
            let hub = server_builder(&keys)
                .authorized_keys(
                    AuthorizedKeys::parse(&line, "authorized_keys")
                        .unwrap()
                        .owned_by("ada"),
                )
                .permit_open(permit)
                .bind("127.0.0.1:0")
                .await
                .unwrap();
            let c = client(&keys, &hub).connect().await.unwrap();
            let mut results = Vec::new();
            for t in [target, other] {
                let fwd = c
                    .forward_local("127.0.0.1:0", "127.0.0.1", t.port())
                    .await
                    .unwrap();
                // A refused tunnel: the local connection is closed at once, nothing echoed.
                let back = round_trip(fwd.local_addr(), b"ping").await;
                let ok = matches!(&back, Ok(b) if b == b"ping");
                assert_eq!(fwd.opened() + fwd.refused(), 1);
                results.push(ok);
            }
            results
        }
    };
    let only_target = || PermitOpen::parse(&format!("127.0.0.1:{}", target.port())).unwrap();
    // The default server permits nothing.
    assert_eq!(check(key.clone(), PermitOpen::none()).await, [false, false]);
    assert_eq!(check(key.clone(), only_target()).await, [true, false]);
    assert_eq!(check(key.clone(), PermitOpen::any()).await, [true, true]);
    // The key's own options narrow what the server permits.
    assert_eq!(
        check(format!("no-port-forwarding {key}"), PermitOpen::any()).await,
        [false, false]
    );
    assert_eq!(
        check(format!("restrict {key}"), PermitOpen::any()).await,
        [false, false]
    );
    assert_eq!(
        check(format!("restrict,port-forwarding {key}"), PermitOpen::any()).await,
        [true, true]
    );
    assert_eq!(
        check(
            format!("permitopen=\"127.0.0.1:{}\" {key}", other.port()),
            PermitOpen::any()
        )
        .await,
        [false, true]
    );
    // A malformed permitopen is a startup error naming the line.
    let err = AuthorizedKeys::parse(
        &format!("\npermitopen=\"nowhere\" {key}"),
        "authorized_keys",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("line 2") && err.contains("permitopen"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_closes_the_local_connection() {
    let keys = Keys::new();
    let hub = server_builder(&keys)
        .permit_open(PermitOpen::any())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let c = client(&keys, &hub).connect().await.unwrap();
    // A port nothing listens on.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let fwd = c
        .forward_local("127.0.0.1:0", "127.0.0.1", closed.port())
        .await
        .unwrap();
    let back = round_trip(fwd.local_addr(), b"hello").await;
    assert!(!matches!(&back, Ok(b) if !b.is_empty()), "{back:?}");
    assert!(eventually(Duration::from_secs(2), || fwd.refused() == 1).await);
    // The connection itself is fine.
    assert!(c.get("/.well-known/rrssh/routes").send().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_forward_survives_a_server_restart() {
    let keys = Keys::new();
    let target = echo_server().await;
    let start = |addr: &str| {
        server_builder(&keys)
            .permit_open(PermitOpen::any())
            .bind(addr.to_owned())
    };
    let hub = start("127.0.0.1:0").await.unwrap();
    let addr = hub.local_addr();
    let c = client(&keys, &hub)
        .backoff(
            Backoff::default()
                .initial(Duration::from_millis(20))
                .max(Duration::from_millis(100)),
        )
        .connect_persistent();
    let fwd = c
        .forward_local("127.0.0.1:0", "127.0.0.1", target.port())
        .await
        .unwrap();
    assert_eq!(round_trip(fwd.local_addr(), b"one").await.unwrap(), b"one");

    drop(hub);
    assert!(eventually(Duration::from_secs(5), || !c.is_connected()).await);
    let (_hub, restarted) = restart(|| start(&addr.to_string())).await;
    // A connection made while the client reconnects waits for it.
    assert_eq!(round_trip(fwd.local_addr(), b"two").await.unwrap(), b"two");
    println!(
        "tunnel usable again {} ms after the server restarted",
        restarted.elapsed().as_millis()
    );
    assert_eq!(fwd.opened(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_forward_brings_the_servers_port_to_this_side() {
    let keys = Keys::new();
    let target = echo_server().await;
    let hub = server_builder(&keys)
        .permit_listen(PermitOpen::parse("127.0.0.1:*").unwrap())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let c = client(&keys, &hub).connect().await.unwrap();
    let tunnel = c
        .forward_remote("localhost", 0, "127.0.0.1", target.port())
        .await
        .unwrap();
    let port = tunnel.port();
    assert_ne!(port, 0);
    let on_server = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 253) as u8).collect();
    assert!(round_trip(on_server, &data).await.unwrap() == data);
    for i in 0..10u8 {
        assert_eq!(round_trip(on_server, &[i; 100]).await.unwrap(), [i; 100]);
    }
    // Dropping the tunnel makes the server stop listening.
    drop(tunnel);
    assert!(stops_listening(on_server, Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_forwards_are_refused_unless_permitted() {
    let keys = Keys::new();
    let key = keys.client.public_key().to_openssh().unwrap();
    for (line, permit, ok) in [
        (key.clone(), PermitOpen::none(), false),
        (
            key.clone(),
            PermitOpen::parse("127.0.0.1:1").unwrap(),
            false,
        ),
        (key.clone(), PermitOpen::parse("127.0.0.1:*").unwrap(), true),
        (
            format!("no-port-forwarding {key}"),
            PermitOpen::any(),
            false,
        ),
        (
            format!("permitlisten=\"127.0.0.1:1\" {key}"),
            PermitOpen::any(),
            false,
        ),
    ] {
        let hub = server_builder(&keys)
            .authorized_keys(
                AuthorizedKeys::parse(&line, "authorized_keys")
                    .unwrap()
                    .owned_by("ada"),
            )
            .permit_listen(permit)
            .bind("127.0.0.1:0")
            .await
            .unwrap();
        let c = client(&keys, &hub).connect().await.unwrap();
        match c.forward_remote("127.0.0.1", 0, "127.0.0.1", 9).await {
            Ok(t) => assert!(ok, "{line}: listening on {}", t.port()),
            Err(e) => {
                assert!(!ok, "{line}: {e}");
                assert!(e.to_string().contains("refused to listen"), "{e}");
            }
        }
        // The connection is fine either way.
        assert!(c.get("/.well-known/rrssh/routes").send().await.is_ok());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_remote_forward_comes_back_after_a_server_restart() {
    let keys = Keys::new();
    let target = echo_server().await;
    let start = |addr: String| {
        server_builder(&keys)
            .permit_listen(PermitOpen::parse("127.0.0.1:*").unwrap())
            .bind(addr)
    };
    let hub = start("127.0.0.1:0".into()).await.unwrap();
    let addr = hub.local_addr();
    let c = client(&keys, &hub)
        .backoff(
            Backoff::default()
                .initial(Duration::from_millis(20))
                .max(Duration::from_millis(100)),
        )
        .connect_persistent();
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tunnel = c
        .forward_remote("127.0.0.1", port, "127.0.0.1", target.port())
        .await
        .unwrap();
    let on_server = std::net::SocketAddr::from(([127, 0, 0, 1], tunnel.port()));
    assert_eq!(round_trip(on_server, b"one").await.unwrap(), b"one");

    drop(hub);
    assert!(eventually(Duration::from_secs(5), || !c.is_connected()).await);
    let (_hub, restarted) = restart(|| start(addr.to_string())).await;
    let mut back = None;
    for _ in 0..200 {
        if let Ok(b) = round_trip(on_server, b"two").await
            && b == b"two"
        {
            back = Some(b);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(back.is_some(), "the remote port is served again");
    println!(
        "remote tunnel served again {} ms after the server restarted",
        restarted.elapsed().as_millis()
    );
}

/// Whether nothing accepts connections on `addr` any more, within `limit`.
async fn stops_listening(addr: std::net::SocketAddr, limit: Duration) -> bool {
    eventually(limit, || std::net::TcpStream::connect(addr).is_err()).await
}
