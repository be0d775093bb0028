//! Idle memory per connection, measured in child processes.

#![allow(clippy::unwrap_used)]

use crate::*;

// ---------------------------------------------------------------- idle memory

/// Resident set size of a process, in KiB.
pub(crate) fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Child process roles for the memory figures: `--child server KIND DIR` prints its port and
/// serves until stdin closes; `--child clients KIND DIR PORT N` opens N idle connections,
/// prints `ready`, and holds them until stdin closes. KIND: `hub` (reverse services),
/// `forward` (idle forward clients) or `bare` (bare russh, one open channel each).
pub(crate) async fn child(args: &[String]) {
    let dir = std::path::PathBuf::from(&args[2]);
    let host = rrssh::keys::load_private_key(dir.join("host"), None).unwrap();
    let key = rrssh::keys::load_private_key(dir.join("client"), None).unwrap();
    let mut held: Vec<Box<dyn std::any::Any + Send>> = Vec::new();
    match (args[0].as_str(), args[1].as_str()) {
        ("server", "bare") => println!("{}", bare_server(&host).await.port()),
        ("server", kind) => {
            let mut server = Server::new()
                .open_registration(true)
                .host_key(host)
                .authorized_keys(
                    AuthorizedKeys::from_keys([key.public_key().clone()]).owned_by("ada"),
                );
            if kind == "forward" {
                server = server.router(app());
            }
            if kind == "many" {
                // Thousands of services under one key (one fleet key, as in the bench), which
                // may also call them through the hub.
                let line = format!(
                    "rrssh-users=\"ada\",rrssh-scopes=\"call:*\" {}",
                    key.public_key().to_openssh().unwrap()
                );
                server = server
                    .max_connections_per_key(1 << 20)
                    .relay(true)
                    .authorized_keys(AuthorizedKeys::parse(&line, "fleet").unwrap());
            }
            let hub = server.bind("127.0.0.1:0").await.unwrap();
            println!("{}", hub.local_addr().port());
            held.push(Box::new(hub));
        }
        ("clients", kind) => {
            let addr: std::net::SocketAddr = format!("127.0.0.1:{}", args[3]).parse().unwrap();
            let n: usize = args[4].parse().unwrap();
            let started = std::time::Instant::now();
            for i in 0..n {
                if kind == "bare" {
                    let h = bare_connect(addr, &key).await;
                    let ch = h.channel_open_session().await.unwrap();
                    held.push(Box::new((h, ch)));
                } else {
                    let mut b = Client::builder(addr.to_string())
                        .user("ada")
                        .identity(key.clone())
                        .host_keys(HostKeyPolicy::Pinned(host.public_key().clone()));
                    if kind == "hub" || kind == "many" {
                        b = b.serve(app()).service_name(format!("svc{i}"));
                    }
                    held.push(Box::new(b.connect().await.unwrap()));
                }
            }
            if kind == "many" {
                println!("ready {}", started.elapsed().as_millis());
            } else {
                println!("ready");
            }
        }
        _ => panic!("unknown child role {args:?}"),
    }
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    })
    .await;
    drop(held);
}

/// A child process of this benchmark, killed when dropped.
pub(crate) struct ChildProc {
    pub(crate) proc: tokio::process::Child,
    pub(crate) out: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl ChildProc {
    fn spawn(args: &[&str]) -> Self {
        let mut proc = tokio::process::Command::new(std::env::current_exe().unwrap())
            .arg("--child")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let out = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
            proc.stdout.take().unwrap(),
        ));
        Self { proc, out }
    }
    async fn line(&mut self) -> String {
        self.out.next_line().await.unwrap().expect("child exited")
    }
    fn pid(&self) -> u32 {
        self.proc.id().unwrap()
    }
}

/// Server RSS growth per idle connection, in KiB: `n` connections of `kind`.
pub(crate) async fn idle_kib(dir: &std::path::Path, kind: &str, n: usize) -> f64 {
    let d = dir.to_str().unwrap();
    let mut server = ChildProc::spawn(&["server", kind, d]);
    let port = server.line().await;
    // One warm-up connection, so that one-time allocations are not counted.
    let mut warm = ChildProc::spawn(&["clients", kind, d, &port, "1"]);
    assert_eq!(warm.line().await, "ready");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(server.pid());
    let mut clients = ChildProc::spawn(&["clients", kind, d, &port, &n.to_string()]);
    assert_eq!(clients.line().await, "ready");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(server.pid());
    drop((clients, warm, server));
    (after.saturating_sub(before)) as f64 / n as f64
}

/// `n` reverse services registering one after the other with one hub (a fleet): the hub's
/// RSS growth per service in KiB, registrations per second, and calls through the hub spread
/// over 1,000 of them for `dur`.
pub(crate) async fn many_services(
    dir: &std::path::Path,
    n: usize,
    dur: Duration,
) -> (f64, f64, Figure) {
    let d = dir.to_str().unwrap();
    let mut server = ChildProc::spawn(&["server", "many", d]);
    let port = server.line().await;
    let mut warm = ChildProc::spawn(&["clients", "many", d, &port, "1"]);
    assert!(warm.line().await.starts_with("ready"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(server.pid());
    let mut clients = ChildProc::spawn(&["clients", "many", d, &port, &n.to_string()]);
    let line = clients.line().await;
    let ms: f64 = line
        .strip_prefix("ready ")
        .and_then(|m| m.parse().ok())
        .unwrap_or(f64::NAN);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(server.pid());
    // Calls spread over the first 1,000 services, 64 in flight, through the hub.
    let host = rrssh::keys::load_private_key(dir.join("host"), None).unwrap();
    let key = rrssh::keys::load_private_key(dir.join("client"), None).unwrap();
    let caller = Client::builder(format!("127.0.0.1:{port}"))
        .user("ada")
        .identity(key)
        .host_keys(HostKeyPolicy::Pinned(host.public_key().clone()))
        .connect()
        .await
        .unwrap();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let spread = load(64, dur, move || {
        let (c, next) = (caller.clone(), next.clone());
        async move {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 1000;
            c.get(&format!("/.well-known/rrssh/peers/svc{i}/hello"))
                .receive::<Value>()
                .await
                .unwrap();
        }
    })
    .await;
    drop((clients, warm, server));
    (
        (after.saturating_sub(before)) as f64 / n as f64,
        n as f64 / (ms / 1000.0),
        spread,
    )
}
