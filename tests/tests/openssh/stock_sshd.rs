//! A `Client` built `plain()` against a stock `sshd`: a terminal with a window change and its
//! exit status, a tunnel, and calls that fail saying there is no rrssh API.

use std::time::Duration;

use rrssh::Client;
use rrssh::client::{CallExt as _, Error};
use rrssh::keys::{HostKeyPolicy, generate_ed25519};
use rrssh::terminal::TerminalOptions;

use super::{Sshd, TempDir, current_user, openssh_available};
use crate::ssh::terminal::read_until;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_client_opens_terminals_and_tunnels_on_a_stock_sshd() {
    if !openssh_available() {
        return;
    }
    let dir = TempDir::new("plain-client");
    let (host, key) = (generate_ed25519("sshd-host"), generate_ed25519("ada"));
    // sshd closes a connection left without channels for 2 s.
    let sshd = Sshd::start(
        &dir,
        &host,
        &key,
        "AllowTcpForwarding yes\nUnusedConnectionTimeout 2",
    )
    .await;
    let builder = Client::builder(format!("127.0.0.1:{}", sshd.port))
        .user(current_user())
        .identity(key)
        .host_keys(HostKeyPolicy::Pinned(host.public_key().clone()));

    // Without `plain`, the error says what the server is and what to do.
    let err = builder.clone().connect().await.unwrap_err();
    assert!(err.to_string().contains("no rrssh API"), "{err}");

    let c = builder.plain().connect().await.unwrap();
    assert!(!c.has_api() && !c.is_closed());
    let e = c.get("/anything").send().await.unwrap_err();
    assert!(
        matches!(&e, Error::Unavailable(why) if why.contains("SSH only")),
        "{e}"
    );

    // A terminal: its size, a window change, its exit status.
    let mut t = c
        .terminal(
            TerminalOptions::new()
                .size(100, 30)
                .command("stty size; read x; stty size; exit 5"),
        )
        .await
        .unwrap();
    let seen = read_until(&mut t.output, "30 100").await;
    assert!(seen.contains("30 100"), "{seen:?}");
    t.input.resize(120, 40).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    t.input.write("go\n").await.unwrap();
    let seen = read_until(&mut t.output, "40 120").await;
    assert!(seen.contains("40 120"), "{seen:?}");
    let _ = read_until(&mut t.output, "\u{0}never").await;
    assert_eq!(t.output.exit_status(), Some(5));

    // A tunnel to a port on the sshd's side.
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_port = echo.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = echo.accept().await {
            tokio::spawn(async move {
                let mut v = Vec::new();
                let _ = s.read_to_end(&mut v).await;
                let _ = s.write_all(&v).await;
            });
        }
    });
    let fwd = c
        .forward_local("127.0.0.1:0", "127.0.0.1", echo_port)
        .await
        .unwrap();
    let mut s = tokio::net::TcpStream::connect(fwd.local_addr())
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(b"via sshd").await.unwrap();
    s.shutdown().await.unwrap();
    let mut back = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, b"via sshd");

    // A remote tunnel: sshd listens, connections come back to the echo service here.
    let remote = c
        .forward_remote("127.0.0.1", 0, "127.0.0.1", echo_port)
        .await
        .unwrap();
    let mut s2 = tokio::net::TcpStream::connect(("127.0.0.1", remote.port()))
        .await
        .unwrap();
    s2.write_all(b"back through sshd").await.unwrap();
    s2.shutdown().await.unwrap();
    let mut back = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s2.read_to_end(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, b"back through sshd");
    drop(remote);

    // Its end is seen: sshd closing the unused connection ends `closed()`.
    drop((s, fwd, t));
    let why = tokio::time::timeout(Duration::from_secs(20), c.closed()).await;
    assert!(
        why.is_ok(),
        "closed() must resolve when sshd closes the connection"
    );
    println!("closed: {}", why.unwrap());
    assert!(c.is_closed());
    drop(sshd);
}
