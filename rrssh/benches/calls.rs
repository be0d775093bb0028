//! rrssh against bare russh, in one run, interleaved (A B A B…), median of repetitions.
//!
//! `cargo bench -p rrssh --bench calls` (about 2 minutes), or `-- --quick` (about 30 s).
//! Prints one JSON line per figure, then a table with the ratios.

#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rrssh::client::CallExt;
use rrssh::keys::{AuthorizedKeys, HostKeyPolicy, PrivateKey, generate_ed25519};
use rrssh::routing::{get, post, stream};
use rrssh::{Client, Hub, Json, JsonStream, Router, Server};
use russh::Channel;
use russh::keys::PrivateKeyWithHashAlg;
use russh::server::{Auth, Msg, Session};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Repetitions per figure; the median is reported.
const REPS: usize = 3;

struct Opts {
    quick: bool,
    /// `--only unary|stream|connect|memory`: run one scenario (for profiling).
    only: Option<String>,
}

impl Opts {
    fn runs(&self, scenario: &str) -> bool {
        self.only.as_deref().is_none_or(|o| o == scenario)
    }

    fn secs(&self) -> Duration {
        if self.quick {
            Duration::from_millis(400)
        } else {
            Duration::from_millis(1500)
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Figure {
    rate: f64,
    p50_us: f64,
    p99_us: f64,
}

fn summarize(mut lat: Vec<Duration>, elapsed: Duration) -> Figure {
    lat.sort();
    let pick = |q: f64| {
        lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    Figure {
        rate: lat.len() as f64 / elapsed.as_secs_f64(),
        p50_us: pick(0.5),
        p99_us: pick(0.99),
    }
}

fn median(mut v: Vec<Figure>) -> Figure {
    v.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    v[v.len() / 2]
}

/// Runs `op` with `conc` workers for `dur`, measuring each operation.
async fn load<F, Fut>(conc: usize, dur: Duration, op: F) -> Figure
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let deadline = start + dur;
    let tasks: Vec<_> = (0..conc)
        .map(|_| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(4096);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    op().await;
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    summarize(all, start.elapsed())
}

// ---------------------------------------------------------------- bare russh baseline

#[derive(Clone)]
struct EchoServer;

impl russh::server::Handler for EchoServer {
    type Error = russh::Error;
    async fn auth_publickey(
        &mut self,
        _: &str,
        _: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(Auth::Accept)
    }
    async fn channel_open_session(
        &mut self,
        ch: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        // A task drains the channel and echoes everything back (an undrained channel stalls the session).
        tokio::spawn(async move {
            let (mut rd, mut wr) = tokio::io::split(ch.into_stream());
            // A first word of u32::MAX asks for a bulk download of the following u64 byte count.
            let mut head = [0u8; 4];
            if rd.read_exact(&mut head).await.is_err() {
                return;
            }
            if head == [0xff; 4] {
                let Ok(total) = rd.read_u64().await else {
                    return;
                };
                let chunk = vec![7u8; 64 * 1024];
                let mut sent = 0u64;
                while sent < total {
                    if wr.write_all(&chunk).await.is_err() {
                        return;
                    }
                    sent += chunk.len() as u64;
                }
                let _ = wr.flush().await;
                // Keep the channel open until the client is done reading.
                let _ = rd.read(&mut head).await;
                return;
            }
            if wr.write_all(&head).await.is_err() {
                return;
            }
            let _ = tokio::io::copy(&mut rd, &mut wr).await;
        });
        Ok(())
    }
}

struct BareClient;
impl russh::client::Handler for BareClient {
    type Error = russh::Error;
    async fn check_server_key(
        &mut self,
        _: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

fn bench_preferred() -> russh::Preferred {
    russh::Preferred {
        cipher: std::borrow::Cow::Owned(vec![russh::cipher::AES_256_GCM]),
        ..Default::default()
    }
}

fn russh_server_config(host: &PrivateKey) -> Arc<russh::server::Config> {
    Arc::new(russh::server::Config {
        keys: vec![host.clone()],
        nodelay: true,
        preferred: bench_preferred(),
        auth_rejection_time: Duration::ZERO,
        auth_rejection_time_initial: Some(Duration::ZERO),
        ..Default::default()
    })
}

fn russh_client_config() -> Arc<russh::client::Config> {
    Arc::new(russh::client::Config {
        nodelay: true,
        preferred: bench_preferred(),
        ..Default::default()
    })
}

async fn bare_server(host: &PrivateKey) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = russh_server_config(host);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let config = config.clone();
            tokio::spawn(async move {
                if let Ok(s) = russh::server::run_stream(config, tcp, EchoServer).await {
                    let _ = s.await;
                }
            });
        }
    });
    addr
}

async fn bare_connect(
    addr: std::net::SocketAddr,
    key: &PrivateKey,
) -> russh::client::Handle<BareClient> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let mut h = russh::client::connect_stream(russh_client_config(), tcp, BareClient)
        .await
        .unwrap();
    let ok = h
        .authenticate_publickey(
            "bench",
            PrivateKeyWithHashAlg::new(Arc::new(key.clone()), None),
        )
        .await
        .unwrap();
    assert!(ok.success());
    h
}

/// Length-prefixed echo over one channel: `conc` messages in flight (pipelined).
async fn bare_echo(
    addr: std::net::SocketAddr,
    key: &PrivateKey,
    conc: usize,
    size: usize,
    dur: Duration,
) -> Figure {
    let h = bare_connect(addr, key).await;
    let ch = h.channel_open_session().await.unwrap();
    let (mut rd, mut wr) = tokio::io::split(ch.into_stream());
    let mut msg = (size as u32).to_be_bytes().to_vec();
    msg.extend(std::iter::repeat_n(b'x', size));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(conc));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let start = Instant::now();
    let deadline = start + dur;
    let writer = {
        let (msg, in_flight) = (msg.clone(), in_flight.clone());
        tokio::spawn(async move {
            while Instant::now() < deadline {
                in_flight.acquire().await.unwrap().forget();
                tx.send(Instant::now()).unwrap();
                wr.write_all(&msg).await.unwrap();
            }
            wr
        })
    };
    let mut lat = Vec::new();
    let mut buf = vec![0u8; msg.len()];
    while let Some(t0) = rx.recv().await {
        rd.read_exact(&mut buf).await.unwrap();
        lat.push(t0.elapsed());
        in_flight.add_permits(1);
    }
    let _wr = writer.await;
    summarize(lat, start.elapsed())
}

/// Bulk throughput on one channel: bytes per second of `total` bytes one way.
async fn bare_bulk(addr: std::net::SocketAddr, key: &PrivateKey, total: usize) -> f64 {
    let h = bare_connect(addr, key).await;
    let ch = h.channel_open_session().await.unwrap();
    let (mut rd, mut wr) = tokio::io::split(ch.into_stream());
    let start = Instant::now();
    wr.write_all(&[0xff; 4]).await.unwrap();
    wr.write_u64(total as u64).await.unwrap();
    let mut got = 0;
    let mut buf = vec![0u8; 256 * 1024];
    while got < total {
        let n = rd.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got += n;
    }
    drop(wr);
    got as f64 / start.elapsed().as_secs_f64()
}

// ---------------------------------------------------------------- rrssh

fn app() -> Router {
    Router::new()
        .route(
            "/hello",
            get(|| async { Json(serde_json::json!({"msg": "Hello World!"})) }),
        )
        .route("/echo", post(|Json(v): Json<Value>| async move { Json(v) }))
        .route(
            "/bulk/{n}",
            stream(|rrssh::Path(n): rrssh::Path<usize>| async move {
                let item = "y".repeat(64 * 1024 - 3);
                JsonStream::new(futures_util::stream::iter(
                    (0..n).map(move |_| item.clone()),
                ))
            }),
        )
}

struct Rig {
    host: PrivateKey,
    key: PrivateKey,
    forward: Hub,
    hub: Hub,
    bare: std::net::SocketAddr,
}

async fn rig() -> Rig {
    let host = generate_ed25519("bench-host");
    let key = generate_ed25519("bench");
    let auth = AuthorizedKeys::from_keys([key.public_key().clone()]);
    let forward = Server::new()
        .router(app())
        .host_key(host.clone())
        .authorized_keys(auth.clone())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let hub = Server::new()
        .host_key(host.clone())
        .authorized_keys(auth)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let bare = bare_server(&host).await;
    Rig {
        host,
        key,
        forward,
        hub,
        bare,
    }
}

async fn rrssh_client(rig: &Rig, hub: &Hub, serve: Option<Router>) -> Client {
    let mut b = Client::builder(hub.local_addr().to_string())
        .identity(rig.key.clone())
        .host_keys(HostKeyPolicy::Pinned(rig.host.public_key().clone()));
    if let Some(r) = serve {
        b = b.serve(r).service_name("bench");
    }
    b.connect().await.unwrap()
}

fn emit(name: &str, system: &str, f: Figure, unit: &str) {
    println!(
        "{{\"figure\":\"{name}\",\"system\":\"{system}\",\"rate\":{:.0},\"unit\":\"{unit}\",\"p50_us\":{:.1},\"p99_us\":{:.1}}}",
        f.rate, f.p50_us, f.p99_us
    );
}

#[tokio::main]
async fn main() {
    let opts = Opts {
        quick: std::env::args().any(|a| a == "--quick"),
        only: std::env::args().skip_while(|a| a != "--only").nth(1),
    };
    let dur = opts.secs();
    let rig = rig().await;
    let fwd = rrssh_client(&rig, &rig.forward, None).await;
    let _svc = rrssh_client(&rig, &rig.hub, Some(app())).await;
    while !rig.hub.peer("bench").is_connected() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rev = rig.hub.peer("bench");
    let body = serde_json::json!({"id": 12345, "name": "a benchmark payload", "tags": ["alpha", "beta", "gamma"],
        "nested": {"x": 1.5, "y": -2, "note": "about two hundred bytes of JSON in all, give or take"}, "ok": true});
    println!(
        "# cipher: aes256-gcm@openssh.com for every SSH figure; cores: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let mut table: Vec<(String, Figure, Figure, &'static str)> = Vec::new();
    if opts.runs("unary") {
        for conc in [1usize, 64] {
            let (mut g_f, mut g_r, mut p_f, mut b) = (vec![], vec![], vec![], vec![]);
            for _ in 0..REPS {
                let c = fwd.clone();
                g_f.push(
                    load(conc, dur, move || {
                        let c = c.clone();
                        async move {
                            c.get("/hello").receive::<Value>().await.unwrap();
                        }
                    })
                    .await,
                );
                b.push(bare_echo(rig.bare, &rig.key, conc, 100, dur).await);
                let c = rev.clone();
                g_r.push(
                    load(conc, dur, move || {
                        let c = c.clone();
                        async move {
                            c.get("/hello").receive::<Value>().await.unwrap();
                        }
                    })
                    .await,
                );
                let (c, body) = (fwd.clone(), body.clone());
                p_f.push(
                    load(conc, dur, move || {
                        let (c, body) = (c.clone(), body.clone());
                        async move {
                            c.post("/echo")
                                .json(&body)
                                .receive::<Value>()
                                .await
                                .unwrap();
                        }
                    })
                    .await,
                );
            }
            let base = median(b);
            let tag = if conc == 1 { "seq" } else { "conc64" };
            emit(&format!("echo_{tag}"), "bare-russh", base, "msg/s");
            for (name, v) in [
                ("get_forward", g_f),
                ("get_reverse", g_r),
                ("post_forward", p_f),
            ] {
                let m = median(v);
                emit(&format!("{name}_{tag}"), "rrssh", m, "calls/s");
                table.push((format!("{name} {tag}"), m, base, "bare russh echo"));
            }
        }
    }
    if opts.runs("stream") {
        // STREAM of 64 KiB items vs bare bulk throughput.
        let items = if opts.quick { 800 } else { 3000 };
        let (mut s, mut bb) = (vec![], vec![]);
        for _ in 0..REPS {
            let t = Instant::now();
            let mut st = fwd
                .stream(&format!("/bulk/{items}"))
                .items::<String>()
                .await
                .unwrap();
            let mut n = 0;
            while let Some(i) = futures_util::StreamExt::next(&mut st).await {
                n += i.unwrap().len() + 3;
            }
            s.push(Figure {
                rate: n as f64 / t.elapsed().as_secs_f64(),
                ..Default::default()
            });
            bb.push(Figure {
                rate: bare_bulk(rig.bare, &rig.key, items * 64 * 1024).await,
                ..Default::default()
            });
        }
        let (s, bb) = (median(s), median(bb));
        emit("stream_64k", "rrssh", s, "B/s");
        emit("bulk", "bare-russh", bb, "B/s");
        table.push((
            "stream 64 KiB items (MB/s)".into(),
            Figure {
                rate: s.rate / 1e6,
                ..s
            },
            Figure {
                rate: bb.rate / 1e6,
                ..bb
            },
            "bare russh bulk",
        ));
    }
    if opts.runs("connect") {
        // Connection setup: connect + auth + first call vs connect + auth.
        let n = if opts.quick { 20 } else { 60 };
        let (mut cs, mut cb) = (vec![], vec![]);
        for _ in 0..REPS {
            let mut lat = vec![];
            let t = Instant::now();
            for _ in 0..n {
                let t0 = Instant::now();
                let c = rrssh_client(&rig, &rig.forward, None).await;
                c.get("/hello").receive::<Value>().await.unwrap();
                lat.push(t0.elapsed());
                c.close().await;
            }
            cs.push(summarize(lat, t.elapsed()));
            let mut lat = vec![];
            let t = Instant::now();
            for _ in 0..n {
                let t0 = Instant::now();
                let h = bare_connect(rig.bare, &rig.key).await;
                lat.push(t0.elapsed());
                drop(h);
            }
            cb.push(summarize(lat, t.elapsed()));
        }
        let (cs, cb) = (median(cs), median(cb));
        emit("connect_auth_first_call", "rrssh", cs, "conn/s");
        emit("connect_auth", "bare-russh", cb, "conn/s");
        table.push((
            "connect+auth(+first call)".into(),
            cs,
            cb,
            "bare russh connect+auth",
        ));
    }
    println!();
    println!(
        "{:<30} {:>12} {:>10} {:>10} | {:>12} {:>10} | {:>7} {:>9}",
        "figure", "rrssh /s", "p50 µs", "p99 µs", "baseline /s", "p50 µs", "ratio", "p50 ratio"
    );
    for (name, a, b, base) in &table {
        println!(
            "{:<30} {:>12.0} {:>10.1} {:>10.1} | {:>12.0} {:>10.1} | {:>6.2}x {:>8.2}x  ({base})",
            name,
            a.rate,
            a.p50_us,
            a.p99_us,
            b.rate,
            b.p50_us,
            a.rate / b.rate,
            if b.p50_us > 0.0 {
                a.p50_us / b.p50_us
            } else {
                0.0
            }
        );
    }
}
