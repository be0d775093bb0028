//! rrssh against bare russh, in one run, interleaved (A B A B…), median of repetitions.
//!
//! `cargo bench -p rrssh --bench calls` (about 2 minutes), or `-- --quick` (about 30 s);
//! `-- --only unary|gateway|overssh|stream|connect|memory` runs one scenario (`gateway` needs
//! `--features gateway`).
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
    /// `--only unary|gateway|overssh|stream|connect|memory`: run one scenario (for profiling).
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

/// Waits for every task, in order.
async fn join_all<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
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
    let all = join_all(tasks).await.into_iter().flatten().collect();
    summarize(all, start.elapsed())
}

/// GET `/hello` through any rrssh client with `conc` calls in flight.
async fn get_load<C>(c: &C, conc: usize, dur: Duration) -> Figure
where
    C: rrssh::client::Call + Clone + Send + Sync + 'static,
{
    let c = c.clone();
    load(conc, dur, move || {
        let c = c.clone();
        async move {
            c.get("/hello").receive::<Value>().await.unwrap();
        }
    })
    .await
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

/// Bulk throughput: `channels` channels on one connection, each downloading `each` bytes.
async fn bare_bulk(
    addr: std::net::SocketAddr,
    key: &PrivateKey,
    each: usize,
    channels: usize,
) -> Figure {
    let h = Arc::new(bare_connect(addr, key).await);
    let start = Instant::now();
    let tasks: Vec<_> = (0..channels)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move {
                let ch = h.channel_open_session().await.unwrap();
                let (mut rd, mut wr) = tokio::io::split(ch.into_stream());
                wr.write_all(&[0xff; 4]).await.unwrap();
                wr.write_u64(each as u64).await.unwrap();
                let mut got = 0;
                let mut buf = vec![0u8; 256 * 1024];
                while got < each {
                    let n = rd.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    got += n;
                }
                got
            })
        })
        .collect();
    let got: usize = join_all(tasks).await.into_iter().sum();
    Figure {
        rate: got as f64 / start.elapsed().as_secs_f64(),
        ..Default::default()
    }
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
            "/bulk/{size}/{n}",
            stream(
                |rrssh::Path((size, n)): rrssh::Path<(usize, usize)>| async move {
                    // Each item is a JSON string of `size` bytes with its quotes and newline.
                    let item = "y".repeat(size - 3);
                    JsonStream::new(futures_util::stream::iter(
                        (0..n).map(move |_| item.clone()),
                    ))
                },
            ),
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

/// `streams` concurrent STREAM calls of `n` items of `size` bytes each: bytes per second.
async fn rrssh_streams(c: &Client, size: usize, n: usize, streams: usize) -> Figure {
    let start = Instant::now();
    let tasks: Vec<_> = (0..streams)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move {
                let mut st = c
                    .stream(&format!("/bulk/{size}/{n}"))
                    .items::<String>()
                    .await
                    .unwrap();
                let mut got = 0;
                while let Some(i) = futures_util::StreamExt::next(&mut st).await {
                    got += i.unwrap().len() + 3;
                }
                got
            })
        })
        .collect();
    let got: usize = join_all(tasks).await.into_iter().sum();
    Figure {
        rate: got as f64 / start.elapsed().as_secs_f64(),
        ..Default::default()
    }
}

// ---------------------------------------------------------------- ssh -R + axum baseline

/// An axum JSON server behind a stock OpenSSH reverse tunnel: a private `sshd` on 127.0.0.1
/// with its own config and keys, and `ssh -N -R` forwarding a port on it to axum.
struct SshTunnel {
    _sshd: tokio::process::Child,
    _ssh: tokio::process::Child,
    dir: std::path::PathBuf,
    /// The forwarded port on the sshd side: HTTP clients connect here.
    port: u16,
}

impl Drop for SshTunnel {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn axum_server() -> u16 {
    let app = axum::Router::new()
        .route(
            "/hello",
            axum::routing::get(|| async { axum::Json(serde_json::json!({"msg": "Hello World!"})) }),
        )
        .route(
            "/echo",
            axum::routing::post(|axum::Json(v): axum::Json<Value>| async move { axum::Json(v) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// A client of the rig's forward server over a spawned `ssh` with a throwaway config; the
/// directory holding the config and key is removed when the guard drops.
async fn over_ssh_client(rig: &Rig) -> Result<(rrssh::Client, TempDirGuard), String> {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("rrssh-bench-overssh-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let guard = TempDirGuard(dir.clone());
    rrssh::keys::write_key_pair(&rig.key, dir.join("id")).map_err(|e| e.to_string())?;
    let _ = std::fs::set_permissions(dir.join("id"), std::fs::Permissions::from_mode(0o600));
    let port = rig.forward.local_addr().port();
    std::fs::write(
        dir.join("known_hosts"),
        format!(
            "[127.0.0.1]:{port} {}\n",
            rig.host
                .public_key()
                .to_openssh()
                .map_err(|e| e.to_string())?
        ),
    )
    .map_err(|e| e.to_string())?;
    let d = dir.display();
    std::fs::write(
        dir.join("ssh_config"),
        format!(
            "Host bench\n  HostName 127.0.0.1\n  Port {port}\n  User bench\n  IdentityFile {d}/id\n  \
             IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking yes\n  \
             Ciphers aes256-gcm@openssh.com\n  LogLevel ERROR\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    let config = dir.join("ssh_config");
    let cmd = rrssh::transport::ssh_command("bench", &["-F", config.to_str().unwrap_or_default()]);
    let client = rrssh::Client::over_command(cmd)
        .await
        .map_err(|e| e.to_string())?;
    Ok((client, guard))
}

struct TempDirGuard(std::path::PathBuf);

impl Drop for TempDirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts the tunnel, or says why it cannot.
async fn ssh_tunnel(
    host: &PrivateKey,
    key: &PrivateKey,
    axum_port: u16,
) -> Result<SshTunnel, String> {
    use std::os::unix::fs::PermissionsExt;
    let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .ok_or("sshd is not installed (apt-get install openssh-server)")?;
    let dir = std::env::temp_dir().join(format!("rrssh-bench-sshd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let d = dir.display();
    rrssh::keys::write_key_pair(host, dir.join("ssh_host")).map_err(|e| e.to_string())?;
    rrssh::keys::write_key_pair(key, dir.join("client")).map_err(|e| e.to_string())?;
    for f in ["ssh_host", "client"] {
        let _ = std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o600));
    }
    std::fs::copy(dir.join("client.pub"), dir.join("authorized_keys"))
        .map_err(|e| e.to_string())?;
    // sshd running as root wants its privilege-separation directory.
    let _ = std::fs::create_dir_all("/run/sshd");
    let sshd_port = free_port();
    let config = format!(
        "Port {sshd_port}\nListenAddress 127.0.0.1\nHostKey {d}/ssh_host\nAuthorizedKeysFile {d}/authorized_keys\n\
         PidFile {d}/sshd.pid\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nAllowTcpForwarding yes\n\
         PermitRootLogin prohibit-password\nCiphers aes256-gcm@openssh.com\nLogLevel ERROR\n"
    );
    std::fs::write(dir.join("sshd_config"), config).map_err(|e| e.to_string())?;
    let sshd = tokio::process::Command::new(sshd)
        .args(["-D", "-e", "-f"])
        .arg(dir.join("sshd_config"))
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("sshd: {e}"))?;
    let user = std::process::Command::new("id")
        .arg("-un")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "root".into());
    let port = free_port();
    // Wait for sshd to listen.
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", sshd_port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ssh = tokio::process::Command::new("ssh")
        .args(["-N", "-T", "-F", "/dev/null", "-i"])
        .arg(dir.join("client"))
        .args(["-p", &sshd_port.to_string()])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "ExitOnForwardFailure=yes",
            "-o",
            "LogLevel=ERROR",
        ])
        .args(["-o", "Ciphers=aes256-gcm@openssh.com"])
        .args(["-R", &format!("{port}:127.0.0.1:{axum_port}")])
        .arg(format!("{user}@127.0.0.1"))
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("ssh: {e}"))?;
    let tunnel = SshTunnel {
        _sshd: sshd,
        _ssh: ssh,
        dir,
        port,
    };
    for _ in 0..250 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(tunnel);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err("the ssh -R tunnel did not come up within 5 s".into())
}

/// HTTP/1.1 keep-alive load: `conc` connections, one request in flight on each.
async fn http_load(
    port: u16,
    prefix: &'static str,
    conc: usize,
    dur: Duration,
    body: Option<Value>,
) -> Figure {
    use http_body_util::BodyExt;
    let start = Instant::now();
    let deadline = start + dur;
    let tasks: Vec<_> = (0..conc)
        .map(|_| {
            let body = body
                .as_ref()
                .map(|b| bytes::Bytes::from(serde_json::to_vec(b).unwrap()));
            tokio::spawn(async move {
                let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap();
                tcp.set_nodelay(true).unwrap();
                let (mut send, conn) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                        .await
                        .unwrap();
                tokio::spawn(conn);
                let mut lat = Vec::with_capacity(4096);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let req = match &body {
                        None => http::Request::get(format!("{prefix}/hello"))
                            .header("host", "127.0.0.1")
                            .body(http_body_util::Full::new(bytes::Bytes::new())),
                        Some(b) => http::Request::post(format!("{prefix}/echo"))
                            .header("host", "127.0.0.1")
                            .header("content-type", "application/json")
                            .body(http_body_util::Full::new(b.clone())),
                    }
                    .unwrap();
                    send.ready().await.unwrap();
                    let resp = send.send_request(req).await.unwrap();
                    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
                    let _: Value = serde_json::from_slice(&bytes).unwrap();
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let all = join_all(tasks).await.into_iter().flatten().collect();
    summarize(all, start.elapsed())
}

// ---------------------------------------------------------------- idle memory

/// Resident set size of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
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
async fn child(args: &[String]) {
    let dir = std::path::PathBuf::from(&args[2]);
    let host = rrssh::keys::load_private_key(dir.join("host"), None).unwrap();
    let key = rrssh::keys::load_private_key(dir.join("client"), None).unwrap();
    let mut held: Vec<Box<dyn std::any::Any + Send>> = Vec::new();
    match (args[0].as_str(), args[1].as_str()) {
        ("server", "bare") => println!("{}", bare_server(&host).await.port()),
        ("server", kind) => {
            let mut server = Server::new()
                .host_key(host)
                .authorized_keys(AuthorizedKeys::from_keys([key.public_key().clone()]));
            if kind == "forward" {
                server = server.router(app());
            }
            let hub = server.bind("127.0.0.1:0").await.unwrap();
            println!("{}", hub.local_addr().port());
            held.push(Box::new(hub));
        }
        ("clients", kind) => {
            let addr: std::net::SocketAddr = format!("127.0.0.1:{}", args[3]).parse().unwrap();
            let n: usize = args[4].parse().unwrap();
            for i in 0..n {
                if kind == "bare" {
                    let h = bare_connect(addr, &key).await;
                    let ch = h.channel_open_session().await.unwrap();
                    held.push(Box::new((h, ch)));
                } else {
                    let mut b = Client::builder(addr.to_string())
                        .identity(key.clone())
                        .host_keys(HostKeyPolicy::Pinned(host.public_key().clone()));
                    if kind == "hub" {
                        b = b.serve(app()).service_name(format!("svc{i}"));
                    }
                    held.push(Box::new(b.connect().await.unwrap()));
                }
            }
            println!("ready");
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
struct ChildProc {
    proc: tokio::process::Child,
    out: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
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
async fn idle_kib(dir: &std::path::Path, kind: &str, n: usize) -> f64 {
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

fn emit(name: &str, system: &str, f: Figure, unit: &str) {
    println!(
        "{{\"figure\":\"{name}\",\"system\":\"{system}\",\"rate\":{:.0},\"unit\":\"{unit}\",\"p50_us\":{:.1},\"p99_us\":{:.1}}}",
        f.rate, f.p50_us, f.p99_us
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return child(&args[i + 1..]).await;
    }
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
        let tunnel = match ssh_tunnel(&rig.host, &rig.key, axum_server().await).await {
            Ok(t) => Some(t),
            Err(why) => {
                println!("# ssh -R + axum baseline skipped: {why}");
                None
            }
        };
        for conc in [1usize, 64] {
            let (mut g_f, mut g_r, mut p_f, mut b) = (vec![], vec![], vec![], vec![]);
            let (mut h_g, mut h_p) = (vec![], vec![]);
            for _ in 0..REPS {
                if let Some(t) = &tunnel {
                    h_g.push(http_load(t.port, "", conc, dur, None).await);
                    h_p.push(http_load(t.port, "", conc, dur, Some(body.clone())).await);
                }
                g_f.push(get_load(&fwd, conc, dur).await);
                b.push(bare_echo(rig.bare, &rig.key, conc, 100, dur).await);
                g_r.push(get_load(&rev, conc, dur).await);
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
            let (g_f, g_r, p_f) = (median(g_f), median(g_r), median(p_f));
            for (name, m) in [
                ("get_forward", g_f),
                ("get_reverse", g_r),
                ("post_forward", p_f),
            ] {
                emit(&format!("{name}_{tag}"), "rrssh", m, "calls/s");
                table.push((format!("{name} {tag}"), m, base, "bare russh echo"));
            }
            if tunnel.is_some() {
                let (h_g, h_p) = (median(h_g), median(h_p));
                emit(&format!("get_{tag}"), "ssh-R+axum", h_g, "req/s");
                emit(&format!("post_{tag}"), "ssh-R+axum", h_p, "req/s");
                table.push((format!("get_reverse {tag}"), g_r, h_g, "ssh -R + axum GET"));
                table.push((
                    format!("post_forward {tag}"),
                    p_f,
                    h_p,
                    "ssh -R + axum POST",
                ));
            }
        }
    }
    #[cfg(feature = "gateway")]
    if opts.runs("gateway") {
        // HTTP clients → the hub's HTTP gateway → SSH → the reverse service, against HTTP
        // clients → sshd's `ssh -R` port → axum: both put a service behind NAT on HTTP.
        match ssh_tunnel(&rig.host, &rig.key, axum_server().await).await {
            Ok(tunnel) => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let gw_port = listener.local_addr().unwrap().port();
                let gw = rrssh::gateway::Gateway::new(rig.hub.registry())
                    .anonymous(rrssh::auth::Grants::parse("call:*").unwrap());
                tokio::spawn(gw.serve(listener));
                for conc in [1usize, 64] {
                    let (mut g, mut h, mut gp, mut hp) = (vec![], vec![], vec![], vec![]);
                    for _ in 0..REPS {
                        g.push(http_load(gw_port, "/peers/bench", conc, dur, None).await);
                        h.push(http_load(tunnel.port, "", conc, dur, None).await);
                        let b = Some(body.clone());
                        gp.push(http_load(gw_port, "/peers/bench", conc, dur, b.clone()).await);
                        hp.push(http_load(tunnel.port, "", conc, dur, b).await);
                    }
                    let (g, h, gp, hp) = (median(g), median(h), median(gp), median(hp));
                    let tag = if conc == 1 { "seq" } else { "conc64" };
                    emit(&format!("gateway_get_{tag}"), "rrssh", g, "req/s");
                    emit(&format!("gateway_post_{tag}"), "rrssh", gp, "req/s");
                    table.push((format!("gateway GET {tag}"), g, h, "ssh -R + axum GET"));
                    table.push((format!("gateway POST {tag}"), gp, hp, "ssh -R + axum POST"));
                }
            }
            Err(why) => println!("# gateway vs ssh -R skipped: {why}"),
        }
    }
    if opts.runs("overssh") {
        // rrssh over a spawned OpenSSH `ssh` (Client::over_command) vs rrssh's own SSH client,
        // to the same server: what the convenience costs.
        match over_ssh_client(&rig).await {
            Ok((via_ssh, _dir)) => {
                for conc in [1usize, 64] {
                    let (mut o, mut d) = (vec![], vec![]);
                    for _ in 0..REPS {
                        o.push(get_load(&via_ssh, conc, dur).await);
                        d.push(get_load(&fwd, conc, dur).await);
                    }
                    let (o, d) = (median(o), median(d));
                    let tag = if conc == 1 { "seq" } else { "conc64" };
                    emit(&format!("get_over_ssh_{tag}"), "rrssh", o, "calls/s");
                    table.push((
                        format!("get over spawned ssh {tag}"),
                        o,
                        d,
                        "rrssh's own client",
                    ));
                }
                via_ssh.close().await;
            }
            Err(why) => println!("# over spawned ssh skipped: {why}"),
        }
    }
    if opts.runs("stream") {
        // STREAM of 1 KiB and 64 KiB items, 1 and 16 streams at once, vs bare bulk throughput
        // on as many channels.
        let scale = if opts.quick { 1 } else { 3 };
        for (size, streams, total) in [
            (1024usize, 1usize, 24 << 20),
            (64 * 1024, 1, 48 << 20),
            (1024, 16, 24 << 20),
            (64 * 1024, 16, 48 << 20),
        ] {
            let total = total * scale;
            let per_stream = total / streams / size;
            let (mut s, mut bb) = (vec![], vec![]);
            for _ in 0..REPS {
                s.push(rrssh_streams(&fwd, size, per_stream, streams).await);
                bb.push(bare_bulk(rig.bare, &rig.key, per_stream * size, streams).await);
            }
            let (s, bb) = (median(s), median(bb));
            let name = format!("stream_{}k_x{streams}", size / 1024);
            emit(&name, "rrssh", s, "B/s");
            emit(&format!("bulk_x{streams}"), "bare-russh", bb, "B/s");
            println!(
                "{{\"figure\":\"{name}_items\",\"system\":\"rrssh\",\"rate\":{:.0},\"unit\":\"items/s\"}}",
                s.rate / size as f64
            );
            let mb = |f: Figure| Figure {
                rate: f.rate / 1e6,
                ..f
            };
            table.push((
                format!("stream {} KiB x{streams} (MB/s)", size / 1024),
                mb(s),
                mb(bb),
                "bare russh bulk",
            ));
        }
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
    if opts.runs("memory") {
        // Idle memory: server RSS growth per connection, measured in child processes.
        let n = if opts.quick { 200 } else { 1000 };
        let dir = std::env::temp_dir().join(format!("rrssh-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        rrssh::keys::write_key_pair(&rig.host, dir.join("host")).unwrap();
        rrssh::keys::write_key_pair(&rig.key, dir.join("client")).unwrap();
        let bare = idle_kib(&dir, "bare", n).await;
        let hub = idle_kib(&dir, "hub", n).await;
        let fwd = idle_kib(&dir, "forward", n).await;
        let _ = std::fs::remove_dir_all(&dir);
        for (name, v) in [("idle_reverse_service", hub), ("idle_forward_client", fwd)] {
            println!(
                "{{\"figure\":\"{name}\",\"system\":\"rrssh\",\"kib_per_conn\":{v:.1},\"connections\":{n}}}"
            );
            let kib = |rate| Figure {
                rate,
                ..Default::default()
            };
            table.push((
                format!("{name} (KiB, lower is better)"),
                kib(v),
                kib(bare),
                "bare russh idle connection + channel",
            ));
        }
        println!(
            "{{\"figure\":\"idle_connection_with_channel\",\"system\":\"bare-russh\",\"kib_per_conn\":{bare:.1},\"connections\":{n}}}"
        );
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
