//! Peers that flood a server and never read what it answers: its memory stays within the
//! documented bounds, other connections keep their latency, and everything is freed when the
//! floods disconnect. The server runs alone in a child process, so its resident memory, open
//! descriptors and tasks are its own; the floods come over plain TCP and over OpenSSH's `ssh -s`
//! (when installed), as an attacker with an authorized key would send them.
//!
//! `cargo test -p rrssh-tests --test integration -- --ignored resources::floods::floods --nocapture`
//! prints the figures (BENCHMARKS.md); `scripts/test` runs it after the other tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::target::{CHILD_ENV, DIR_ENV, Target, serve_tasks};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rrssh::client::CallExt;
use rrssh::keys::{AuthorizedKeys, generate_ed25519, load_private_key, write_key_pair};
use rrssh::routing::{get, stream};
use rrssh::{Client, JsonStream, Router, Server};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::process::{Child, ChildStdout, Command};

use crate::wire::rules::frame;

/// Connections per flood.
const CONNS: usize = 100;
/// Calls per connection in the stream flood (the default limit of calls in flight).
const CALLS: u32 = 1024;

const HELLO: &str =
    r#"{"version":1,"max_frame":1048576,"window":1048576,"max_calls":1024,"conn_window":16777216}"#;

/// The server under attack: SSH and plain TCP, an endless stream and a quick route. It prints
/// its addresses, then answers `tasks` on standard input with its number of live tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the server of floods_stay_within_their_bounds_and_are_freed, run in a child process"]
async fn child_flood_server() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let dir = PathBuf::from(std::env::var_os(DIR_ENV).expect("key directory"));
    let host = load_private_key(dir.join("host"), None).unwrap();
    let client = load_private_key(dir.join("client"), None).unwrap();
    let item = "x".repeat(1000);
    let router = Router::new()
        .route("/quick", get(|| async { "quick" }))
        .route(
            "/endless",
            stream(move || {
                let item = item.clone();
                async move { JsonStream::new(futures_util::stream::repeat(item)) }
            }),
        );
    let ssh = Server::new()
        .host_key(host)
        .authorized_keys(AuthorizedKeys::from_keys([client.public_key().clone()]).owned_by("ada"))
        .max_unauthenticated(1000)
        .max_unauthenticated_per_source(1000)
        .router(router.clone())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let tcp = Server::new()
        .router(router)
        .bind_tcp("127.0.0.1:0")
        .await
        .unwrap();
    println!("ready ssh={} tcp={}", ssh.local_addr(), tcp.local_addr());
    serve_tasks().await;
}

/// Median of 200 sequential calls on a connection of its own.
async fn p50_micros(client: &Client) -> u128 {
    let mut t = Vec::with_capacity(200);
    for _ in 0..200 {
        let start = Instant::now();
        assert_eq!(client.get("/quick").receive_text().await.unwrap(), "quick");
        t.push(start.elapsed().as_micros());
    }
    t.sort_unstable();
    t[t.len() / 2]
}

/// One flooding connection: what it writes to, and what keeps it open.
struct Flooder {
    writer: Box<dyn AsyncWrite + Send + Unpin>,
    _keep: Option<(Child, Option<ChildStdout>)>,
}

async fn open_tcp(addr: SocketAddr) -> Flooder {
    // Nothing is ever read from it.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    Flooder {
        writer: Box::new(tcp),
        _keep: None,
    }
}

/// A connection through OpenSSH's client, whose standard output nobody reads.
fn open_ssh(addr: SocketAddr, key: &Path) -> Flooder {
    let mut child = Command::new("ssh")
        .args([
            "-q",
            "-p",
            &addr.port().to_string(),
            "-i",
            key.to_str().unwrap(),
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-s",
            "ada@127.0.0.1",
            "rrssh",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take();
    Flooder {
        writer: Box::new(stdin),
        _keep: Some((child, stdout)),
    }
}

#[derive(Clone, Copy, Debug)]
enum Flood {
    /// PINGs as fast as the server takes them, for a few seconds; PONGs never read.
    Pings,
    /// 1,024 STREAM calls of an endless stream; their bodies never read.
    Streams,
}

async fn flood(mut f: Flooder, kind: Flood, for_how_long: Duration) -> Flooder {
    f.writer
        .write_all(&frame(1, 0, 0, HELLO.as_bytes()))
        .await
        .unwrap();
    match kind {
        Flood::Pings => {
            let batch: Vec<u8> = (0..1024).flat_map(|_| frame(9, 0, 0, &[7; 64])).collect();
            let _ = tokio::time::timeout(for_how_long, async {
                while f.writer.write_all(&batch).await.is_ok() {}
            })
            .await;
        }
        Flood::Streams => {
            let mut req = Vec::new();
            for i in 0..CALLS {
                let mut p = vec![6];
                p.extend_from_slice(b"STREAM");
                p.extend_from_slice(&8u16.to_be_bytes());
                p.extend_from_slice(b"/endless");
                p.extend_from_slice(&0u16.to_be_bytes());
                req.extend(frame(2, 1, 1 + 2 * i, &p));
            }
            let _ = tokio::time::timeout(for_how_long, f.writer.write_all(&req)).await;
        }
    }
    let _ = f.writer.flush().await;
    f
}

#[derive(Debug)]
struct Figures {
    rss_before: u64,
    rss_during: u64,
    rss_after: u64,
    fds: (usize, usize),
    tasks: (usize, usize, usize),
    p50: (u128, u128),
}

async fn measure(
    target: &mut Target,
    probe: &Client,
    open: impl Fn() -> futures_util::future::BoxFuture<'static, Flooder>,
    kind: Flood,
) -> Figures {
    let (rss_before, fds_before, tasks_before) =
        (target.rss_kib(), target.fds(), target.tasks().await);
    let p50_before = p50_micros(probe).await;
    let mut conns = Vec::new();
    for _ in 0..CONNS {
        conns.push(open().await);
    }
    let floods: Vec<_> = conns
        .into_iter()
        .map(|c| tokio::spawn(flood(c, kind, Duration::from_secs(4))))
        .collect();
    // Measured once the flood is in full: every stream call served (however loaded the machine
    // is), or two seconds of pings.
    let full = match kind {
        Flood::Pings => tasks_before,
        Flood::Streams => tasks_before + CONNS * CALLS as usize,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    tokio::time::sleep(Duration::from_secs(2)).await;
    while target.tasks().await < full && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let p50_during = p50_micros(probe).await;
    let tasks_during = target.tasks().await;
    let mut rss_during = target.rss_kib();
    let conns: Vec<Flooder> = futures_util::future::join_all(floods)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    rss_during = rss_during.max(target.rss_kib());
    drop(conns);
    // Everything the connections held goes with them.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut tasks_after = target.tasks().await;
    while tasks_after > tasks_before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        tasks_after = target.tasks().await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    Figures {
        rss_before,
        rss_during,
        rss_after: target.rss_kib(),
        fds: (fds_before, target.fds()),
        tasks: (tasks_before, tasks_during, tasks_after),
        p50: (p50_before, p50_during),
    }
}

/// Heavy (100,000 tasks on the server for a while), so it runs alone: `scripts/test` runs it
/// after the other tests, with `-- --ignored resources::`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "heavy: scripts/test runs it alone, after the other tests"]
async fn floods_stay_within_their_bounds_and_are_freed() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("rrssh-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write_key_pair(&generate_ed25519("host"), dir.join("host")).unwrap();
    write_key_pair(&generate_ed25519("mallory@flood"), dir.join("client")).unwrap();
    let mut target = Target::start(&dir, "resources::floods::child_flood_server").await;
    let probe = Client::tcp(target.addr("tcp")).await.unwrap();
    // Warm up: both routes, once.
    p50_micros(&probe).await;
    let mut s = probe.stream("/endless").items::<String>().await.unwrap();
    s.next().await.unwrap().unwrap();
    drop(s);

    let ssh_ok = std::process::Command::new("ssh")
        .arg("-V")
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ssh_ok {
        assert!(
            std::env::var_os("RRSSH_REQUIRE_OPENSSH").is_none(),
            "OpenSSH is required (RRSSH_REQUIRE_OPENSSH is set) but ssh is missing"
        );
        crate::skipped(
            "the floods over ssh -s: ssh is not installed (apt-get install openssh-client)",
        );
    }
    let key = dir.join("client");
    let tcp_addr = target.addr("tcp");
    let ssh_addr = target.addr("ssh");
    // The stream flood runs twice on TCP: the second must find the memory the first freed.
    let mut rounds: Vec<(&str, Flood)> = vec![
        ("tcp", Flood::Pings),
        ("tcp", Flood::Streams),
        ("tcp", Flood::Streams),
    ];
    if ssh_ok {
        rounds.extend([("ssh -s", Flood::Pings), ("ssh -s", Flood::Streams)]);
    }
    let mut first_peak: Option<u64> = None;
    for (carrier, kind) in rounds {
        let key = key.clone();
        let open = move || -> futures_util::future::BoxFuture<'static, Flooder> {
            let key = key.clone();
            Box::pin(async move {
                if carrier == "tcp" {
                    open_tcp(tcp_addr).await
                } else {
                    open_ssh(ssh_addr, &key)
                }
            })
        };
        let f = measure(&mut target, &probe, open, kind).await;
        println!(
            "figure: {CONNS} {carrier} connections, {kind:?} never read: server RSS {} KiB before, {} KiB during (+{} KiB), {} KiB after; fds {} -> {}; tasks {} -> {} -> {}; probe p50 {} us -> {} us",
            f.rss_before,
            f.rss_during,
            f.rss_during.saturating_sub(f.rss_before),
            f.rss_after,
            f.fds.0,
            f.fds.1,
            f.tasks.0,
            f.tasks.1,
            f.tasks.2,
            f.p50.0,
            f.p50.1,
        );
        // Bounds per connection (PROTOCOL.md §7, the guide's limits table, docs/src/reliability.md): a PING flood holds
        // one PONG and a read buffer; a stream flood holds its 1,024 calls' suspended producers
        // (about 4 KiB each: no body bytes, which are made only when they can be sent) and at
        // most the output bound, whatever the windows.
        let per_conn_kib = match kind {
            Flood::Pings => 256,
            Flood::Streams => 8 * 1024,
        };
        let growth = f.rss_during.saturating_sub(f.rss_before);
        assert!(
            growth < per_conn_kib * CONNS as u64,
            "{carrier} {kind:?}: RSS grew {growth} KiB"
        );
        // What a flood freed stays with the allocator for reuse (glibc keeps freed heap pages
        // mapped), so resident memory after a flood is the allocator's cache, not a leak: a
        // second flood of the same kind mostly reuses it, where a leak would double the peak.
        if let (Flood::Streams, "tcp") = (kind, carrier) {
            match first_peak {
                None => first_peak = Some(f.rss_during),
                Some(first) => assert!(
                    f.rss_during < first + first * 3 / 4,
                    "{carrier} {kind:?}: a second flood took the server from a peak of {first} KiB to {} KiB",
                    f.rss_during
                ),
            }
        }
        assert!(
            f.tasks.2 <= f.tasks.0,
            "{carrier} {kind:?}: tasks {:?} not freed",
            f.tasks
        );
        assert!(
            f.fds.1 <= f.fds.0,
            "{carrier} {kind:?}: descriptors {:?} not freed",
            f.fds
        );
        assert!(
            f.p50.1 < f.p50.0 * 20 + 5_000,
            "{carrier} {kind:?}: probe latency {:?}",
            f.p50
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
