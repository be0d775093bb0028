//! Attacks that once took a server's memory or descriptors, or locked others out, each run
//! against a server in a child process with its own bounds measured:
//!
//! - request bodies held open (64 calls × 15 MiB on one connection: once 1.0 GB);
//! - idle unauthenticated connections re-opened as they are cut (once locked out every login and
//!   logged 8,000 lines a second);
//! - slowloris connections to the HTTP gateway (once exhausted a 1,024-descriptor hub);
//! - session channels and `tcpip-forward` listeners on one connection (once 120,000 and 3,000);
//! - service-name registrations with long names (once 300 MB for 300 names);
//! - the web listener: silent connections and WebSockets that never log in (`web.rs`).
//!
//! `cargo test -p rrssh-tests --test integration -- --ignored resources::abuse --nocapture`
//! prints the figures (the guide's reliability table, docs/src/reliability.md).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rrssh::client::CallExt;
use rrssh::keys::{
    AuthorizedKeys, HostKeyPolicy, PrivateKey, generate_ed25519, load_private_key, write_key_pair,
};
use rrssh::routing::{get, post};
use rrssh::{Body, Client, Json, Router, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

use super::target::{CHILD_ENV, Target, child_setup, serve_tasks};

/// The server under attack: SSH with the default limits (a 2 s idle-body timeout and a 2 s
/// login time, to keep the test short) and the HTTP gateway, at most 1,024 descriptors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the server of attacks_stay_within_their_bounds, run in a child process"]
async fn child_abuse_server() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let dir = child_setup();
    let host = load_private_key(dir.join("host"), None).unwrap();
    let client = load_private_key(dir.join("client"), None).unwrap();
    let router = Router::new()
        .route("/quick", get(|| async { "quick" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                "slow"
            }),
        )
        .route(
            "/json",
            post(|Json(v): Json<serde_json::Value>| async move { v.to_string().len().to_string() }),
        );
    let mut limits = rrssh::proto::Limits::default();
    limits.body_idle_timeout = Duration::from_secs(2);
    let tcp = Server::new()
        .router(router.clone())
        .bind_tcp("127.0.0.1:0")
        .await
        .unwrap();
    let hub = Server::new()
        .host_key(host)
        .authorized_keys(AuthorizedKeys::from_keys([client.public_key().clone()]).owned_by("ada"))
        .router(router)
        .limits(limits)
        .open_registration(true)
        .auth_timeout(Duration::from_secs(2))
        .permit_listen(rrssh::tunnel::PermitOpen::parse("127.0.0.1:*").unwrap())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = listener.local_addr().unwrap();
    let gw = rrssh::gateway::Gateway::new(hub.registry())
        .anonymous(rrssh::auth::Grants::parse("call:*").unwrap())
        .header_timeout(Duration::from_secs(2));
    tokio::spawn(gw.serve(listener));
    let web = rrssh::websocket::WebListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .max_connections(super::web::WEB_SLOTS)
        .serve(&hub)
        .unwrap();
    println!(
        "ready ssh={} gateway={gateway} tcp={} web={web}",
        hub.local_addr(),
        tcp.local_addr()
    );
    serve_tasks().await;
}

pub(super) struct Keys {
    pub(super) host: PrivateKey,
    pub(super) client: PrivateKey,
}

pub(super) async fn login(
    keys: &Keys,
    ssh: SocketAddr,
) -> Result<Client, rrssh::transport::ConnectError> {
    Client::builder(ssh.to_string())
        .user("ada")
        .identity(keys.client.clone())
        .host_keys(HostKeyPolicy::Pinned(keys.host.public_key().clone()))
        .connect()
        .await
}

/// Before and after an attack.
pub(super) struct Snapshot {
    rss: u64,
    pub(super) fds: usize,
    tasks: usize,
    warnings: usize,
}

pub(super) async fn snapshot(t: &mut Target) -> Snapshot {
    Snapshot {
        rss: t.rss_kib(),
        fds: t.fds(),
        tasks: t.tasks().await,
        warnings: t.warnings(),
    }
}

/// Waits for the server to give back what an attack held: tasks and descriptors.
pub(super) async fn settles(t: &mut Target, before: &Snapshot) -> Snapshot {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = snapshot(t).await;
        if (now.tasks <= before.tasks && now.fds <= before.fds) || Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(super) fn report(
    what: &str,
    before: &Snapshot,
    peak_rss: u64,
    peak_fds: usize,
    after: &Snapshot,
) {
    println!(
        "figure: {what}: server RSS {} KiB before, peak {} KiB (+{} KiB), {} KiB after; fds {} -> peak {} -> {}; tasks {} -> {}; {} warning lines",
        before.rss,
        peak_rss,
        peak_rss.saturating_sub(before.rss),
        after.rss,
        before.fds,
        peak_fds,
        after.fds,
        before.tasks,
        after.tasks,
        after.warnings - before.warnings,
    );
    assert!(after.tasks <= before.tasks, "{what}: tasks not freed");
    assert!(after.fds <= before.fds, "{what}: descriptors not freed");
}

/// 64 calls on one connection each send 15 MiB of a JSON body and then nothing, never ending
/// it. The connection's handlers hold at most its body buffer (64 MiB); calls past it are
/// answered 503, and bodies that stall are reset with 408 after the idle-body timeout.
async fn bodies_held_open(t: &mut Target, keys: &Keys) {
    let before = snapshot(t).await;
    let c = login(keys, t.addr("ssh")).await.unwrap();
    let calls: Vec<_> = (0..64)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move {
                let chunk = bytes::Bytes::from(vec![b' '; 1 << 20]);
                let head = futures_util::stream::iter(
                    std::iter::once(bytes::Bytes::from_static(b"["))
                        .chain(std::iter::repeat_n(chunk, 15))
                        .map(Ok::<_, std::io::Error>),
                );
                let body = Body::from_stream(head.chain(futures_util::stream::pending()));
                let req = http::Request::post("/json")
                    .header("content-type", "application/json")
                    .body(body)
                    .unwrap();
                // An answer, or a reset with a status.
                match c.oneshot(req).await {
                    Ok(res) => res.status().as_u16(),
                    Err(rrssh::client::Error::Status { status, .. }) => status.as_u16(),
                    Err(e) => panic!("the call failed instead of being answered: {e}"),
                }
            })
        })
        .collect();
    let mut peak = before.rss;
    let mut peak_fds = before.fds;
    let started = Instant::now();
    while calls.iter().any(|h| !h.is_finished()) && started.elapsed() < Duration::from_secs(30) {
        peak = peak.max(t.rss_kib());
        peak_fds = peak_fds.max(t.fds());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut statuses = std::collections::BTreeMap::new();
    for h in calls {
        *statuses.entry(h.await.unwrap()).or_insert(0) += 1;
    }
    println!(
        "bodies held open: answers {statuses:?} in {:?}",
        started.elapsed()
    );
    drop(c);
    let after = settles(t, &before).await;
    report(
        "64 request bodies of 15 MiB held open on one connection",
        &before,
        peak,
        peak_fds,
        &after,
    );
    assert!(statuses.get(&503).is_some_and(|n| *n > 0), "{statuses:?}");
    assert!(
        statuses.keys().all(|s| [503, 408].contains(s)),
        "every call is answered 503 or 408: {statuses:?}"
    );
    // The body buffer and the connection window, and the allocator's slack.
    let growth = peak.saturating_sub(before.rss);
    assert!(
        growth < 160 * 1024,
        "bodies held open took the server +{growth} KiB"
    );
}

/// 100 idle connections from one address (127.0.0.2), each re-opened when the server cuts it,
/// while 20 logins from another address (127.0.0.1) must all succeed.
async fn unauthenticated_from_one_address(t: &mut Target, keys: &Keys) {
    let before = snapshot(t).await;
    let ssh = t.addr("ssh");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attackers: Vec<_> = (0..100)
        .map(|_| {
            let stop = stop.clone();
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let sock = tokio::net::TcpSocket::new_v4().unwrap();
                    sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
                    let Ok(mut s) = sock.connect(ssh).await else {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    let mut buf = [0u8; 512];
                    // Say nothing; wait to be cut.
                    while matches!(
                        tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await,
                        Ok(Ok(n)) if n > 0
                    ) || !stop.load(std::sync::atomic::Ordering::Relaxed)
                        && matches!(
                            tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await,
                            Ok(Ok(n)) if n > 0
                        )
                    {}
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut ok = 0;
    let mut peak_fds = before.fds;
    for _ in 0..20 {
        peak_fds = peak_fds.max(t.fds());
        if let Ok(c) = login(keys, ssh).await
            && c.get("/quick").receive_text().await.is_ok()
        {
            ok += 1;
        }
    }
    let peak = t.rss_kib();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for a in attackers {
        a.abort();
    }
    let during = t.warnings() - before.warnings;
    let after = settles(t, &before).await;
    report(
        "100 idle unauthenticated connections from one address, re-opened",
        &before,
        peak,
        peak_fds,
        &after,
    );
    assert_eq!(
        ok, 20,
        "logins from another address while one address floods"
    );
    // At most 10 warnings a second per kind, with a count of those left out.
    assert!(during < 300, "{during} warning lines");
}

/// 900 connections to the gateway that send a request head one byte at a time: the server
/// holds at most its cap, cuts each after the header timeout, and SSH logins keep working.
async fn gateway_slowloris(t: &mut Target, keys: &Keys) {
    let before = snapshot(t).await;
    let gw = t.addr("gateway");
    let mut conns = Vec::new();
    for _ in 0..900 {
        if let Ok(s) = tokio::net::TcpStream::connect(gw).await {
            conns.push(s);
        }
    }
    let trickle = tokio::spawn(async move {
        let head = b"GET /peers HTTP/1.1\r\nHost: x\r\nX-Slow: ";
        let mut cut = 0;
        for i in 0..head.len() {
            for s in &mut conns {
                if s.write_all(&head[i..=i]).await.is_err() {
                    cut += 1;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        (cut, conns)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let peak_fds = t.fds();
    let peak = t.rss_kib();
    let c = login(keys, t.addr("ssh"))
        .await
        .expect("SSH logins during the flood");
    assert_eq!(c.get("/quick").receive_text().await.unwrap(), "quick");
    drop(c);
    let (_, conns) = trickle.await.unwrap();
    // Every connection was answered (503 over the cap) or cut (408/closed at the timeout).
    let mut closed = 0;
    for mut s in conns {
        let mut buf = Vec::new();
        if tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
            .await
            .is_ok()
        {
            closed += 1;
        }
    }
    let after = settles(t, &before).await;
    report(
        "900 slowloris connections to the gateway",
        &before,
        peak,
        peak_fds,
        &after,
    );
    assert_eq!(
        closed, 900,
        "connections still open after the header timeout"
    );
    assert!(
        peak_fds < before.fds + 512 + 64,
        "the gateway held {peak_fds} descriptors"
    );
}

/// One connection asks for 1,000 session channels and 3,000 `tcpip-forward` listeners.
async fn channels_and_listeners(t: &mut Target, keys: &Keys) {
    let before = snapshot(t).await;
    let ssh = crate::ssh::limits::russh_login(t.addr("ssh"), "ada", &keys.client).await;
    let mut channels = Vec::new();
    let mut refused = 0;
    for _ in 0..1000 {
        match ssh.channel_open_session().await {
            Ok(ch) => channels.push(ch),
            Err(_) => refused += 1,
        }
    }
    let mut listening = 0;
    for _ in 0..3000 {
        if ssh.tcpip_forward("127.0.0.1", 0).await.is_ok() {
            listening += 1;
        }
    }
    let (peak, peak_fds) = (t.rss_kib(), t.fds());
    println!(
        "channels: {} open, {refused} refused; listeners: {listening} of 3000",
        channels.len()
    );
    drop(channels);
    let _ = ssh
        .disconnect(russh::Disconnect::ByApplication, "", "")
        .await;
    drop(ssh);
    let after = settles(t, &before).await;
    report(
        "1,000 session channels and 3,000 listeners on one connection",
        &before,
        peak,
        peak_fds,
        &after,
    );
    assert_eq!(refused, 1000 - 64, "session channels past the cap of 64");
    assert_eq!(listening, 16, "listeners past the cap of 16");
    assert!(peak_fds < before.fds + 40, "{peak_fds} descriptors");
}

/// 300 registrations with 255-character names (the most a HELLO carries): all refused.
async fn long_names(t: &mut Target, keys: &Keys) {
    let before = snapshot(t).await;
    for i in 0..300 {
        let name = format!("{i:03}{}", "n".repeat(252));
        let c = Client::builder(t.addr("ssh").to_string())
            .user("ada")
            .identity(keys.client.clone())
            .host_keys(HostKeyPolicy::Pinned(keys.host.public_key().clone()))
            .serve(Router::new())
            .service_name(name)
            .connect()
            .await;
        // Refused: the connection is closed with the reason.
        if let Ok(c) = c {
            let _ = tokio::time::timeout(Duration::from_secs(5), c.connection().closed()).await;
        }
    }
    let peak = t.rss_kib();
    let listed: serde_json::Value = {
        let mut s = tokio::net::TcpStream::connect(t.addr("gateway"))
            .await
            .unwrap();
        s.write_all(b"GET /peers HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).await.unwrap();
        serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap()
    };
    let after = settles(t, &before).await;
    report(
        "300 registrations of 255-character names",
        &before,
        peak,
        before.fds,
        &after,
    );
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{listed}");
    assert!(
        after.warnings - before.warnings < 100,
        "names flood the log"
    );
}

/// One connection pipelines 20,000 calls to a slow route and reads nothing: 1,024 are served,
/// the rest answered 429. Before: 94 MB held for 8.6 MB sent, and one warning per refused call
/// (145,418 lines).
async fn pipelined_without_reading(t: &mut Target) {
    let before = snapshot(t).await;
    let mut tcp = tokio::net::TcpStream::connect(t.addr("tcp")).await.unwrap();
    let hello = r#"{"version":1,"max_frame":1048576,"window":1048576,"max_calls":1024,"conn_window":16777216}"#;
    let mut out = crate::wire::rules::frame(1, 0, 0, hello.as_bytes());
    for i in 0..20_000u32 {
        let mut p = vec![3];
        p.extend_from_slice(b"GET");
        p.extend_from_slice(&5u16.to_be_bytes());
        p.extend_from_slice(b"/slow");
        p.extend_from_slice(&0u16.to_be_bytes());
        out.extend(crate::wire::rules::frame(2, 1, 1 + 2 * i, &p));
    }
    let sent = out.len();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.write_all(&out)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (peak, peak_fds) = (t.rss_kib(), t.fds());
    let warned = t.warnings() - before.warnings;
    drop(tcp);
    let after = settles(t, &before).await;
    report(
        &format!(
            "20,000 calls pipelined on one connection ({} KiB), answers never read",
            sent / 1024
        ),
        &before,
        peak,
        peak_fds,
        &after,
    );
    assert!(warned < 100, "{warned} warning lines");
    let growth = peak.saturating_sub(before.rss);
    assert!(growth < 32 * 1024, "+{growth} KiB");
}

/// Heavy, so it runs alone: `scripts/test` runs it after the other tests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "heavy: scripts/test runs it alone, after the other tests"]
async fn attacks_stay_within_their_bounds() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("rrssh-abuse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = Keys {
        host: generate_ed25519("host"),
        client: generate_ed25519("mallory@abuse"),
    };
    write_key_pair(&keys.host, dir.join("host")).unwrap();
    write_key_pair(&keys.client, dir.join("client")).unwrap();
    let mut t = Target::start(&dir, "resources::abuse::child_abuse_server").await;
    // Warm up.
    let c = login(&keys, t.addr("ssh")).await.unwrap();
    assert_eq!(c.get("/quick").receive_text().await.unwrap(), "quick");
    drop(c);
    tokio::time::sleep(Duration::from_millis(300)).await;

    bodies_held_open(&mut t, &keys).await;
    unauthenticated_from_one_address(&mut t, &keys).await;
    gateway_slowloris(&mut t, &keys).await;
    channels_and_listeners(&mut t, &keys).await;
    long_names(&mut t, &keys).await;
    pipelined_without_reading(&mut t).await;
    super::web::web_listener_floods(&mut t, &keys).await;
    let _ = std::fs::remove_dir_all(&dir);
}
