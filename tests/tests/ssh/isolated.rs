//! Fault tests that measure process-wide figures (resident memory, open file descriptors), so
//! each runs alone in a child process: the parent test re-runs this test binary with the child
//! test's exact name, and the child's figures are not disturbed by tests running in parallel.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use rrssh::client::{CallExt, Error};
use rrssh::routing::{get, stream};
use rrssh::{JsonStream, Router};

use super::{Keys, client, eventually, server};

const CHILD_ENV: &str = "RRSSH_ISOLATED_CHILD";

/// Runs the ignored test `name` in a child process and returns its output; fails if it fails.
fn run_child(name: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            name,
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child test {name} failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "child test {name} did not run:\n{stdout}"
    );
    for line in stdout
        .lines()
        .filter_map(|l| l.find("figure: ").map(|i| &l[i..]))
    {
        println!("{line}");
    }
    stdout
}

fn in_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn panicking_calls_leak_no_tasks_or_descriptors() {
    let out = run_child("ssh::isolated::child_panicking_calls");
    assert!(out.contains("figure: 10000 panicking calls"), "{out}");
}

#[test]
fn a_stalled_gib_stream_stays_within_its_window() {
    let out = run_child("ssh::isolated::child_stalled_gib_stream");
    assert!(out.contains("figure: stalled 1 GiB stream"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "runs in its own process, started by panicking_calls_leak_no_tasks_or_descriptors"]
async fn child_panicking_calls() {
    if !in_child() {
        return;
    }
    const N: usize = 10_000;
    let router: Router = Router::new()
        .route(
            "/boom",
            get(|| async {
                if true {
                    panic!("handler bug");
                }
                "unreachable"
            }),
        )
        .route("/quick", get(|| async { "quick" }));
    // Keep the default panic hook from printing 10,000 backtraces.
    std::panic::set_hook(Box::new(|_| {}));
    let keys = Keys::new();
    let hub = server(&keys, Some(router)).await;
    let c = client(&keys, &hub).connect().await.unwrap();
    assert_eq!(c.get("/quick").receive_text().await.unwrap(), "quick");
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let (tasks_before, fds_before) = (tasks(), open_fds());
    let mut answered_500 = 0;
    for batch in 0..N / 500 {
        let calls = (0..500).map(|_| {
            let c = c.clone();
            async move { c.get("/boom").receive_text().await }
        });
        for r in futures_util::future::join_all(calls).await {
            match r {
                Err(Error::Status { status, body }) if status == 500 => {
                    assert!(!body.message.contains("handler bug"), "no panic text leaks");
                    answered_500 += 1;
                }
                other => panic!("batch {batch}: expected 500, got {other:?}"),
            }
        }
    }
    assert_eq!(answered_500, N);
    assert_eq!(c.get("/quick").receive_text().await.unwrap(), "quick");
    assert!(
        eventually(Duration::from_secs(5), || tasks() <= tasks_before).await,
        "tasks: {tasks_before} before, {} after",
        tasks()
    );
    let fds_after = open_fds();
    assert_eq!(fds_after, fds_before, "file descriptors leaked");
    println!(
        "figure: {N} panicking calls answered 500; tasks {tasks_before} -> {}, open fds {fds_before} -> {fds_after}",
        tasks()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "runs in its own process, started by a_stalled_gib_stream_stays_within_its_window"]
async fn child_stalled_gib_stream() {
    if !in_child() {
        return;
    }
    const ITEM: usize = 64 * 1024;
    const ITEMS: usize = 16 * 1024; // 1 GiB in all
    let produced = Arc::new(AtomicUsize::new(0));
    let p = produced.clone();
    let router: Router = Router::new()
        .route(
            "/gib",
            stream(move || {
                let p = p.clone();
                async move {
                    let item = "x".repeat(ITEM - 3);
                    JsonStream::new(futures_util::stream::iter(0..ITEMS).map(move |_| {
                        p.fetch_add(1, Ordering::Relaxed);
                        item.clone()
                    }))
                }
            }),
        )
        .route("/quick", get(|| async { "quick" }));
    let keys = Keys::new();
    let hub = server(&keys, Some(router)).await;
    let c = client(&keys, &hub).connect().await.unwrap();
    // Warm up the allocator and both ends with a few short streams read to the end.
    for _ in 0..3 {
        let mut s = c.stream("/gib").items::<String>().await.unwrap();
        for _ in 0..64 {
            s.next().await.unwrap().unwrap();
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_kib();
    produced.store(0, Ordering::Relaxed);

    let mut s = c.stream("/gib").items::<String>().await.unwrap();
    assert_eq!(s.next().await.unwrap().unwrap().len(), ITEM - 3);
    // The reader stalls. Other calls on the same connection complete meanwhile.
    for _ in 0..200 {
        assert_eq!(c.get("/quick").receive_text().await.unwrap(), "quick");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stalled = produced.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        produced.load(Ordering::Relaxed),
        stalled,
        "the producer must not run while the reader stalls"
    );
    let growth_kib = rss_kib().saturating_sub(before);
    // One window (1 MiB) in flight plus an item on each side, both ends in this process.
    let bound_kib = 8 * 1024;
    println!(
        "figure: stalled 1 GiB stream: {stalled} of {ITEMS} items produced, RSS growth {growth_kib} KiB (bound {bound_kib} KiB)"
    );
    assert!(
        stalled <= 1024 * 1024 / ITEM + 4,
        "{stalled} items produced ahead"
    );
    assert!(growth_kib < bound_kib, "RSS grew {growth_kib} KiB");
    drop(s);
    assert_eq!(c.get("/quick").receive_text().await.unwrap(), "quick");
}
