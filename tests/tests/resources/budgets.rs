//! One key cannot take the server: attacks that multiply objects (connections, calls, bodies)
//! against a server in a child process, each measured as its resident memory and descriptors.
//!
//! - request bodies being read, on 16 SSH connections of one key (once 1,019 MB);
//! - complete bodies held by handlers that wait, then the client leaves (once 1,115 MB, and
//!   991 MB two minutes after);
//! - byte-stream uploads never read (once 105.7 MB on 16 connections);
//! - idle handshakes from 50 addresses while real logins come (once 0 of 18 got in);
//! - one caller's slow calls through the relay while another calls the same peer (once every
//!   slot of the peer was the first caller's for 20 s).
//!
//! After each attack the server must hold nothing of it: its budgets hold 0 bytes, and the bytes
//! live on its heap (counted by the test binary's allocator) are back within 2 MiB of where they
//! were. Resident memory is reported too, but not asserted to come back: glibc keeps pages of
//! what was freed in its arenas even with `mmap_threshold` fixed at 128 KiB and
//! `trim_threshold` 0, as the child runs (15–30 MiB over the start here, while the heap is back
//! to within a few KiB).
//!
//! `cargo test -p rrssh-tests --test integration -- --ignored resources::budgets --nocapture`
//! prints the figures (SECURITY.md).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use rrssh::client::CallExt;
use rrssh::hub::RelayPolicy;
use rrssh::keys::{
    AuthorizedKeys, HostKeyPolicy, PrivateKey, generate_ed25519, load_private_key, write_key_pair,
};
use rrssh::routing::{get, post};
use rrssh::{Body, ByteStream, Client, Router, Server};
use tokio::io::AsyncReadExt;
use tower::ServiceExt;

use super::target::{CHILD_ENV, Target, child_setup, serve_tasks_of};

/// The budget of one key in the child server.
const PER_KEY: u64 = 48 << 20;
/// A body in the attacks.
const BODY: usize = 15 << 20;
/// glibc tunables of the child: freed memory goes back to the system at once.
const MALLOC: &str = "glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=0";

fn line(options: &str, key: &PrivateKey) -> String {
    format!("{options} {}\n", key.public_key().to_openssh().unwrap())
}

/// The server under attack: a hub with a 48 MiB budget per key, 160 MiB in all, relay on
/// (256 calls per caller and peer, 5 s to begin an answer), 3 s idle-body timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the server of one_key_cannot_take_the_server, run in a child process"]
async fn child_budget_server() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let dir = child_setup();
    let key = |name: &str| load_private_key(dir.join(name), None).unwrap();
    let text = [
        line(
            r#"rrssh-users="mallory",rrssh-scopes="call:*""#,
            &key("mallory"),
        ),
        line(r#"rrssh-users="ada",rrssh-scopes="call:*""#, &key("ada")),
        line(r#"rrssh-users="svc",rrssh-services="slow""#, &key("svc")),
    ]
    .concat();
    let router = Router::new()
        .route("/quick", get(|| async { "quick" }))
        .route("/echo", post(|b: Bytes| async move { b }))
        .route(
            "/hold",
            post(|b: Bytes| async move {
                tokio::time::sleep(Duration::from_secs(3)).await;
                b.len().to_string()
            }),
        )
        .route(
            "/upload",
            post(|unread: ByteStream| async move {
                // Held, never read.
                let _held = unread;
                tokio::time::sleep(Duration::from_secs(3)).await;
                "not read"
            }),
        );
    let mut limits = rrssh::proto::Limits::default();
    limits.body_idle_timeout = Duration::from_secs(3);
    let mut relay = RelayPolicy::default();
    relay.answer_timeout = Duration::from_secs(5);
    let hub = Server::new()
        .host_key(key("host"))
        .authorized_keys(AuthorizedKeys::parse(&text, "authorized_keys").unwrap())
        .router(router)
        .limits(limits)
        .per_key_memory(PER_KEY as usize)
        .process_memory(160 << 20)
        .relay(true)
        .relay_policy(relay)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    println!("ready ssh={}", hub.local_addr());
    serve_tasks_of(hub.memory()).await;
}

struct Keys {
    host: PrivateKey,
    mallory: PrivateKey,
    ada: PrivateKey,
    svc: PrivateKey,
}

fn builder(
    keys: &Keys,
    ssh: SocketAddr,
    user: &str,
    key: &PrivateKey,
) -> rrssh::transport::ClientBuilder {
    Client::builder(ssh.to_string())
        .user(user)
        .identity(key.clone())
        .host_keys(HostKeyPolicy::Pinned(keys.host.public_key().clone()))
}

async fn logins(keys: &Keys, ssh: SocketAddr, n: usize) -> Vec<Client> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            builder(keys, ssh, "mallory", &keys.mallory)
                .connect()
                .await
                .unwrap(),
        );
    }
    out
}

/// The status of a call: its answer's, or its reset's.
async fn status_of(c: &Client, req: rrssh::Request) -> u16 {
    match c.clone().oneshot(req).await {
        Ok(res) => {
            let status = res.status().as_u16();
            // Read to the end: an answer is what the caller gets whole.
            let _ = res.into_body().collect_limited(64 << 20).await;
            status
        }
        Err(rrssh::client::Error::Status { status, .. }) => status.as_u16(),
        Err(e) => panic!("the call failed instead of being answered: {e}"),
    }
}

/// A body of `BODY` bytes; `then_stall` leaves it open after them.
fn body(then_stall: bool) -> Body {
    let chunks = futures_util::stream::iter(
        std::iter::repeat_n(Bytes::from(vec![b'x'; 1 << 20]), BODY >> 20)
            .map(Ok::<_, std::io::Error>),
    );
    if then_stall {
        Body::from_stream(chunks.chain(futures_util::stream::pending()))
    } else {
        Body::from_stream(chunks)
    }
}

/// Runs `calls` while sampling the server; returns the statuses and the peaks.
async fn measured(
    t: &Target,
    calls: Vec<tokio::task::JoinHandle<u16>>,
) -> (BTreeMap<u16, usize>, u64, usize) {
    let (mut peak, mut peak_fds) = (t.rss_kib(), t.fds());
    let started = Instant::now();
    while calls.iter().any(|h| !h.is_finished()) && started.elapsed() < Duration::from_secs(60) {
        peak = peak.max(t.rss_kib());
        peak_fds = peak_fds.max(t.fds());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut statuses = BTreeMap::new();
    for h in calls {
        *statuses.entry(h.await.unwrap()).or_insert(0) += 1;
    }
    (statuses, peak, peak_fds)
}

/// What the server holds before an attack: resident memory (KiB), descriptors, live heap bytes.
async fn baseline(t: &mut Target) -> (u64, usize, usize) {
    (t.rss_kib(), t.fds(), t.heap().await)
}

/// The same once the server let go of what the attack held, and the bytes its budgets hold.
async fn settled(t: &mut Target, fds_before: usize) -> (u64, usize, usize, usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while (t.fds() > fds_before || t.held().await > 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    (t.rss_kib(), t.fds(), t.heap().await, t.held().await)
}

fn report(
    what: &str,
    before: (u64, usize, usize),
    peak: (u64, usize),
    after: (u64, usize, usize, usize),
) {
    println!(
        "figure: {what}: server RSS {} KiB before, peak {} KiB (+{} KiB), {} KiB after; heap {} KiB before, {} KiB after; fds {} -> peak {} -> {}; budgets hold {} bytes after",
        before.0,
        peak.0,
        peak.0.saturating_sub(before.0),
        after.0,
        before.2 / 1024,
        after.2 / 1024,
        before.1,
        peak.1,
        after.1,
        after.3,
    );
    assert!(after.1 <= before.1, "{what}: descriptors not freed");
    assert_eq!(
        after.3, 0,
        "{what}: the budgets still hold bytes after the client left"
    );
    // What is live on the heap is back where it was: nothing the attack made is kept.
    assert!(
        after.2 < before.2 + (2 << 20),
        "{what}: {} KiB more live on the heap after the client left",
        after.2.saturating_sub(before.2) / 1024
    );
}

/// What the server may hold over its baseline while one key attacks: the key's budget, and a
/// fixed overhead for its connections (SSH and rrssh buffers, windows in flight).
const OVERHEAD_KIB: u64 = 64 * 1024;

/// The server's peak resident memory stayed within the key's budget and that overhead.
fn within_the_key_budget(before_kib: u64, peak_kib: u64) {
    let growth = peak_kib.saturating_sub(before_kib);
    assert!(
        growth < PER_KEY / 1024 + OVERHEAD_KIB,
        "+{growth} KiB for a key whose budget is {} KiB",
        PER_KEY / 1024
    );
}

/// `per_client` calls on each client, each posting `BODY` bytes to `path` and then stalling.
fn stalled_posts(
    clients: &[Client],
    per_client: usize,
    path: &'static str,
) -> Vec<tokio::task::JoinHandle<u16>> {
    clients
        .iter()
        .flat_map(|c| (0..per_client).map(move |_| c.clone()))
        .map(|c| {
            tokio::spawn(async move {
                let req = http::Request::post(path).body(body(true)).unwrap();
                status_of(&c, req).await
            })
        })
        .collect()
}

/// 16 SSH connections of one key, 4 calls each, each sending 15 MiB to `/echo` and then
/// stalling. Together the key may hold its budget; the calls past it are refused with 429, the
/// ones that stall reset with 408.
async fn bodies_being_read(t: &mut Target, keys: &Keys) {
    let before = baseline(t).await;
    let clients = logins(keys, t.addr("ssh"), 16).await;
    let calls = stalled_posts(&clients, 4, "/echo");
    let (statuses, peak, peak_fds) = measured(t, calls).await;
    drop(clients);
    let after = settled(t, before.1).await;
    println!("bodies being read: answers {statuses:?}");
    report(
        "64 bodies of 15 MiB being read, on 16 connections of one key",
        before,
        (peak, peak_fds),
        after,
    );
    assert!(statuses.get(&429).is_some_and(|n| *n > 0), "{statuses:?}");
    assert!(
        statuses.keys().all(|s| [429, 408].contains(s)),
        "{statuses:?}"
    );
    within_the_key_budget(before.0, peak);
}

/// 64 complete bodies of 15 MiB, 16 at a time on 4 connections, to a handler that holds its
/// body for 3 s; then the client leaves. At most the key's budget is held; the rest is 429.
async fn bodies_held_by_handlers(t: &mut Target, keys: &Keys) {
    let before = baseline(t).await;
    let clients = logins(keys, t.addr("ssh"), 4).await;
    let calls = clients
        .iter()
        .map(|c| {
            let c = c.clone();
            tokio::spawn(async move {
                let mut wave = futures_util::stream::iter(0..16)
                    .map(|_| {
                        let c = c.clone();
                        async move {
                            let req = http::Request::post("/hold").body(body(false)).unwrap();
                            status_of(&c, req).await
                        }
                    })
                    .buffer_unordered(4);
                let mut ok = 0u16;
                while let Some(s) = wave.next().await {
                    assert!([200, 429].contains(&s), "status {s}");
                    ok += u16::from(s == 200);
                }
                ok
            })
        })
        .collect();
    let (accepted, peak, peak_fds) = measured(t, calls).await;
    drop(clients);
    let after = settled(t, before.1).await;
    println!("bodies held by handlers: calls answered 200 per connection {accepted:?}");
    report(
        "64 complete bodies of 15 MiB held by waiting handlers, 4 connections",
        before,
        (peak, peak_fds),
        after,
    );
    within_the_key_budget(before.0, peak);
}

/// 16 connections × 8 byte-stream uploads the handler never reads, each sending 15 MiB: what
/// they buffer is charged to the key, and the calls past its budget are refused.
async fn uploads_never_read(t: &mut Target, keys: &Keys) {
    let before = baseline(t).await;
    let clients = logins(keys, t.addr("ssh"), 16).await;
    let calls = stalled_posts(&clients, 8, "/upload");
    let (statuses, peak, peak_fds) = measured(t, calls).await;
    drop(clients);
    let after = settled(t, before.1).await;
    println!("uploads never read: answers {statuses:?}");
    report(
        "128 byte-stream uploads never read, 16 connections",
        before,
        (peak, peak_fds),
        after,
    );
    assert!(
        statuses.keys().all(|s| [200, 429].contains(s)),
        "{statuses:?}"
    );
    within_the_key_budget(before.0, peak);
}

/// 50 addresses (127.0.0.2 to .51) each hold 10 idle handshakes, re-opened as they are cut,
/// while 18 logins come from 127.0.0.1: every login gets in.
async fn idle_handshakes_from_many_addresses(t: &mut Target, keys: &Keys) {
    let before = baseline(t).await;
    let ssh = t.addr("ssh");
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicUsize::new(0));
    let attackers: Vec<_> = (2..52u8)
        .flat_map(|a| (0..10).map(move |_| a))
        .map(|a| {
            let (stop, opened) = (stop.clone(), opened.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let sock = tokio::net::TcpSocket::new_v4().unwrap();
                    sock.bind(SocketAddr::from(([127, 0, 0, a], 0))).unwrap();
                    let Ok(mut s) = sock.connect(ssh).await else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    opened.fetch_add(1, Ordering::Relaxed);
                    // Say nothing; read until cut.
                    let mut buf = [0u8; 512];
                    while let Ok(Ok(n)) =
                        tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf)).await
                    {
                        if n == 0 || stop.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut ok = 0;
    let (mut peak, mut peak_fds) = (before.0, before.1);
    for _ in 0..18 {
        peak = peak.max(t.rss_kib());
        peak_fds = peak_fds.max(t.fds());
        if let Ok(c) = builder(keys, ssh, "ada", &keys.ada).connect().await
            && c.get("/quick").receive_text().await.is_ok()
        {
            ok += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        a.abort();
    }
    let after = settled(t, before.1).await;
    println!(
        "idle handshakes: {} opened by 50 addresses; {ok} of 18 logins got in",
        opened.load(Ordering::Relaxed)
    );
    report(
        "50 addresses × 10 idle handshakes, re-opened as cut",
        before,
        (peak, peak_fds),
        after,
    );
    assert_eq!(
        ok, 18,
        "real logins while 50 addresses hold idle handshakes"
    );
}

/// A service whose calls take 3 s; one caller sends it 1,000 calls through the relay at once,
/// then another caller calls it: the second is served, the first holds at most its share.
async fn one_caller_on_the_relay(t: &mut Target, keys: &Keys) {
    let before = baseline(t).await;
    let ssh = t.addr("ssh");
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    let slow = Router::new()
        .route(
            "/slow",
            get(move || {
                count.fetch_add(1, Ordering::Relaxed);
                async {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    "slow"
                }
            }),
        )
        .route("/never", get(std::future::pending::<&'static str>));
    let service = builder(keys, ssh, "svc", &keys.svc)
        .serve(slow)
        .service_name("slow")
        .connect()
        .await
        .unwrap();
    let mallory = builder(keys, ssh, "mallory", &keys.mallory)
        .connect()
        .await
        .unwrap();
    let calls: Vec<_> = (0..1000)
        .map(|_| {
            let c = mallory.clone();
            tokio::spawn(async move {
                let req = http::Request::get("/.well-known/rrssh/peers/slow/slow")
                    .body(Body::empty())
                    .unwrap();
                status_of(&c, req).await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ada = builder(keys, ssh, "ada", &keys.ada)
        .connect()
        .await
        .unwrap();
    let started = Instant::now();
    let answer = ada
        .get("/.well-known/rrssh/peers/slow/slow")
        .receive_text()
        .await;
    let waited = started.elapsed();
    let (statuses, peak, peak_fds) = measured(t, calls).await;
    println!(
        "relay: the other caller answered {answer:?} in {waited:?}; the first caller's 1,000 calls: {statuses:?}; the service ran {}",
        served.load(Ordering::Relaxed)
    );
    assert_eq!(answer.unwrap(), "slow");
    assert!(
        waited < Duration::from_secs(6),
        "the other caller waited {waited:?}"
    );
    assert_eq!(statuses.get(&200), Some(&256), "{statuses:?}");
    assert!(
        statuses.keys().all(|s| [200, 429].contains(s)),
        "{statuses:?}"
    );
    // No deadline of its own: the answer must begin within the relay's 5 s.
    let started = Instant::now();
    let never = ada
        .get("/.well-known/rrssh/peers/slow/never")
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(never.status().as_u16(), 504);
    let text = String::from_utf8_lossy(&never.into_body().collect_limited(4096).await.unwrap())
        .into_owned();
    assert!(text.contains("answer_timeout"), "{text}");
    assert!(waited < Duration::from_secs(7), "{waited:?}");
    drop((service, mallory, ada));
    let after = settled(t, before.1).await;
    report(
        "1,000 slow relayed calls from one caller",
        before,
        (peak, peak_fds),
        after,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "heavy: scripts/test runs it alone, after the other tests"]
async fn one_key_cannot_take_the_server() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("rrssh-budgets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = Keys {
        host: generate_ed25519("host"),
        mallory: generate_ed25519("mallory@budgets"),
        ada: generate_ed25519("ada@budgets"),
        svc: generate_ed25519("svc@budgets"),
    };
    for (name, key) in [
        ("host", &keys.host),
        ("mallory", &keys.mallory),
        ("ada", &keys.ada),
        ("svc", &keys.svc),
    ] {
        write_key_pair(key, dir.join(name)).unwrap();
    }
    let mut t = Target::start_with(
        &dir,
        "resources::budgets::child_budget_server",
        &[("GLIBC_TUNABLES", MALLOC)],
    )
    .await;
    // Warm up.
    let c = logins(&keys, t.addr("ssh"), 1).await;
    assert_eq!(c[0].get("/quick").receive_text().await.unwrap(), "quick");
    drop(c);
    tokio::time::sleep(Duration::from_millis(300)).await;

    bodies_being_read(&mut t, &keys).await;
    bodies_held_by_handlers(&mut t, &keys).await;
    uploads_never_read(&mut t, &keys).await;
    idle_handshakes_from_many_addresses(&mut t, &keys).await;
    one_caller_on_the_relay(&mut t, &keys).await;
    let _ = std::fs::remove_dir_all(&dir);
}
