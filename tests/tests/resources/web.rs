//! Floods of the web listener (SSH over WebSocket), against the abuse server of `abuse.rs`:
//! silent TCP connections past its connection cap, and WebSockets from many addresses that
//! upgrade and never log in. Logins keep working (raw SSH, and over WebSocket from an address
//! that holds nothing), and everything is freed after.

use std::time::Duration;

use rrssh::client::CallExt;
use rrssh::keys::HostKeyPolicy;
use tokio::io::AsyncReadExt;

use super::abuse::{Keys, login, report, settles, snapshot};
use super::target::Target;

/// The abuse server's web listener holds this many connections before upgrade.
pub(super) const WEB_SLOTS: usize = 256;

async fn login_over_ws(keys: &Keys, web: std::net::SocketAddr) -> bool {
    let c = rrssh::Client::builder(format!("ws://127.0.0.1:{}", web.port()))
        .user("ada")
        .identity(keys.client.clone())
        .host_keys(HostKeyPolicy::Pinned(keys.host.public_key().clone()))
        .connect()
        .await;
    match c {
        Ok(c) => c.get("/quick").receive_text().await.is_ok(),
        Err(_) => false,
    }
}

pub(super) async fn web_listener_floods(t: &mut Target, keys: &Keys) {
    let web = t.addr("web");
    // 1. 800 connections that say nothing, 40 from each of 20 addresses (below the 64 one
    //    address may hold): at most WEB_SLOTS are held (each for 10 s at most); the rest are
    //    answered 503 at once.
    let before = snapshot(t).await;
    let mut silent = Vec::new();
    for i in 0..800u32 {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("127.0.2.{}:0", 1 + i % 20).parse().unwrap())
            .unwrap();
        if let Ok(s) = sock.connect(web).await {
            silent.push(s);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (peak, peak_fds) = (t.rss_kib(), t.fds());
    let c = login(keys, t.addr("ssh"))
        .await
        .expect("raw SSH logins while the web port is full");
    assert_eq!(c.get("/quick").receive_text().await.unwrap(), "quick");
    drop(c);
    let mut answered = 0;
    for mut s in silent {
        let mut buf = Vec::new();
        if tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut buf))
            .await
            .is_ok()
        {
            answered += 1;
        }
    }
    let after = settles(t, &before).await;
    report(
        "800 silent connections to the web listener from 20 addresses",
        &before,
        peak,
        peak_fds,
        &after,
    );
    assert_eq!(
        answered, 800,
        "every connection answered or cut within the first-byte time"
    );
    assert!(
        peak_fds < before.fds + WEB_SLOTS + 64,
        "the web listener held {peak_fds} descriptors"
    );

    // 2. WebSockets from 20 addresses, 10 each, that upgrade and never log in: they count among
    //    the unauthenticated connections (100), and a login over WebSocket from an address
    //    holding none still gets in.
    let before = snapshot(t).await;
    let url = format!("ws://127.0.0.1:{}{}", web.port(), rrssh::websocket::PATH);
    let mut held = Vec::new();
    for i in 0..200u32 {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("127.0.1.{}:0", 1 + i % 20).parse().unwrap())
            .unwrap();
        let Ok(tcp) = sock.connect(web).await else {
            continue;
        };
        if let Ok((ws, _)) = tokio_tungstenite::client_async(url.as_str(), tcp).await {
            held.push(ws);
        }
    }
    let (peak, peak_fds) = (t.rss_kib(), t.fds());
    assert!(
        login_over_ws(keys, web).await,
        "a login over WebSocket during the flood"
    );
    drop(held);
    let after = settles(t, &before).await;
    report(
        "200 WebSockets from 20 addresses that never log in",
        &before,
        peak,
        peak_fds,
        &after,
    );
    assert!(
        peak_fds < before.fds + 100 + 64,
        "{peak_fds} descriptors held for unauthenticated WebSockets"
    );
}
