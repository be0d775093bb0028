//! Running `rrssh serve` and `rrssh hub` as an operator does: SIGTERM drains, SIGHUP reloads
//! who may log in, `--admin` serves Prometheus metrics, `--audit` writes one line per login
//! and call.

use super::*;
use tokio::io::AsyncBufReadExt;

/// A running server and the lines it prints.
struct Running {
    child: tokio::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Running {
    fn start(args: &[&str], dir: &Dir) -> Self {
        Self::start_with(args, dir, &[])
    }

    fn start_with(args: &[&str], dir: &Dir, env: &[(&str, &std::path::Path)]) -> Self {
        let mut child = tokio::process::Command::new(BIN)
            .args(args)
            .arg("--host-key")
            .arg(dir.path("host"))
            .arg("--create-host-key")
            .arg("--authorized-keys")
            .arg(dir.path("authorized_keys"))
            .env("USER", "ada")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(l)) = out.next_line().await {
                println!("server: {l}");
                let l = message(&l);
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    /// Waits for a line that starts with `prefix`; returns it.
    async fn line(&mut self, prefix: &str) -> String {
        let wait = async {
            while let Some(l) = self.lines.recv().await {
                if l.starts_with(prefix) {
                    return l;
                }
            }
            panic!("the server ended before printing `{prefix}…`")
        };
        tokio::time::timeout(Duration::from_secs(15), wait)
            .await
            .unwrap_or_else(|_| panic!("no line `{prefix}…`"))
    }

    fn signal(&self, name: &str) {
        let pid = self.child.id().unwrap().to_string();
        let ok = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

fn client(
    listen: &str,
    key: rrssh::keys::PrivateKey,
    dir: &Dir,
) -> rrssh::transport::ClientBuilder {
    let host = load_private_key(dir.path("host"), None).unwrap();
    rrssh::Client::builder(listen)
        .user("ada")
        .identity(key)
        .host_keys(rrssh::keys::HostKeyPolicy::Pinned(
            host.public_key().clone(),
        ))
        .no_proxy()
}

const ROUTES: &str = rrssh::routing::introspect::ROUTES_PATH;

async fn routes_status(c: &rrssh::Client) -> u16 {
    use rrssh::client::CallExt;
    c.get(ROUTES).send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_call_in_flight_finish_then_exits_0() {
    let dir = Dir::new("sigterm");
    let (id, service) = hub_keys(&dir);
    let listen = format!("127.0.0.1:{}", free_port());
    let mut hub = Running::start(&["hub", "--listen", &listen, "--grace", "20s"], &dir);
    hub.line("hub listening on").await;
    let host = load_private_key(dir.path("host"), None).unwrap();
    let slow = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            Json(json!({"done": true}))
        }),
    );
    let _svc = rrssh::Client::builder(&listen)
        .user("svc")
        .identity(service)
        .host_keys(rrssh::keys::HostKeyPolicy::Pinned(
            host.public_key().clone(),
        ))
        .serve(slow)
        .service_name("svc")
        .connect()
        .await
        .unwrap();
    hub.line("connected    svc").await;
    let (h, p) = listen.split_once(':').unwrap();
    std::fs::write(
        dir.path("known_hosts"),
        format!("[{h}]:{p} {}\n", host.public_key().to_openssh().unwrap()),
    )
    .unwrap();
    let call = tokio::process::Command::new(BIN)
        .args([
            "call",
            &format!("hub://ada@{listen}/svc"),
            "GET",
            "/slow",
            "-i",
        ])
        .arg(&id)
        .arg("--known-hosts")
        .arg(dir.path("known_hosts"))
        .output();
    let call = tokio::spawn(call);
    tokio::time::sleep(Duration::from_millis(500)).await;
    hub.signal("TERM");
    let stopping = hub.line("hub stopping (SIGTERM)").await;
    assert!(stopping.contains("20s to finish"), "{stopping}");
    let out = call.await.unwrap().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        json!({"done": true})
    );
    let stopped = hub.line("hub stopped").await;
    assert_eq!(stopped, "hub stopped (0 calls cut)");
    let status = tokio::time::timeout(Duration::from_secs(10), hub.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_lets_new_keys_in_and_old_connections_go_on() {
    let dir = Dir::new("sighup");
    let old_key = generate_ed25519("old");
    let new_key = generate_ed25519("new");
    let line = |k: &rrssh::keys::PrivateKey| format!("{}\n", k.public_key().to_openssh().unwrap());
    std::fs::write(dir.path("authorized_keys"), line(&old_key)).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut server = Running::start(&["serve", "--listen", &listen, "--relay"], &dir);
    server.line("server listening on").await;
    let old = client(&listen, old_key.clone(), &dir)
        .connect()
        .await
        .unwrap();
    assert_eq!(routes_status(&old).await, 200);
    assert!(
        client(&listen, new_key.clone(), &dir)
            .connect()
            .await
            .is_err()
    );

    std::fs::write(dir.path("authorized_keys"), line(&new_key)).unwrap();
    server.signal("HUP");
    server
        .line("SIGHUP: authorized keys, CAs and revoked keys reloaded")
        .await;
    let new = client(&listen, new_key, &dir).connect().await.unwrap();
    assert_eq!(routes_status(&new).await, 200);
    assert!(
        client(&listen, old_key, &dir).connect().await.is_err(),
        "the old key is out for new logins"
    );
    assert_eq!(routes_status(&old).await, 200, "its connection goes on");

    // A file that cannot be used keeps the keys in force.
    std::fs::write(dir.path("authorized_keys"), "ssh-ed25519 not-a-key\n").unwrap();
    server.signal("HUP");
    let kept = server
        .line("SIGHUP: keys not reloaded, the old ones stay")
        .await;
    assert!(kept.contains("authorized-keys"), "{kept}");
    assert_eq!(routes_status(&new).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_serves_moving_metrics_and_the_audit_log_a_line_per_login_and_call() {
    let dir = Dir::new("admin");
    let key = generate_ed25519("k");
    let stranger = generate_ed25519("stranger");
    std::fs::write(
        dir.path("authorized_keys"),
        format!("{}\n", key.public_key().to_openssh().unwrap()),
    )
    .unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    // Port 0: the listener says which port it got (no race for a free one).
    let admin = "127.0.0.1:0".to_owned();
    let audit = dir.path("audit.jsonl");
    let mut server = Running::start(
        &[
            "serve",
            "--listen",
            &listen,
            "--relay",
            "--admin",
            &admin,
            "--audit",
            audit.to_str().unwrap(),
        ],
        &dir,
    );
    let admin = admin_address(&server.line("admin listening on").await);
    let scrape = || async {
        let body = http_get(&admin, "/metrics").await;
        let lines = body.lines().map(|l| Ok(l.to_owned()));
        prometheus_parse::Scrape::parse(lines).unwrap()
    };
    let calls = |s: &prometheus_parse::Scrape| -> f64 {
        s.samples
            .iter()
            .filter(|m| m.metric == "rrssh_calls_total")
            .filter(|m| {
                m.labels.get("route") == Some(ROUTES) && m.labels.get("status") == Some("200")
            })
            .map(|m| match m.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    let before = scrape().await;
    let c = client(&listen, key, &dir).connect().await.unwrap();
    for _ in 0..3 {
        assert_eq!(routes_status(&c).await, 200);
    }
    assert!(client(&listen, stranger, &dir).connect().await.is_err());
    let after = scrape().await;
    assert_eq!(calls(&after) - calls(&before), 3.0);
    assert!(
        after
            .samples
            .iter()
            .any(|m| m.metric == "rrssh_call_duration_seconds_count"),
        "a latency histogram"
    );
    assert!(
        after
            .samples
            .iter()
            .any(|m| m.metric == "rrssh_logins_total"
                && m.labels.get("carrier") == Some("ssh")
                && m.labels.get("result") == Some("accepted")),
        "logins by carrier"
    );
    assert!(http_get(&admin, "/healthz").await.contains("ok"));
    assert!(http_get(&admin, "/readyz").await.contains("ready"));

    c.close().await;
    server.signal("TERM");
    server.line("server stopped").await;
    let text = std::fs::read_to_string(&audit).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let logins: Vec<&Value> = lines.iter().filter(|l| l["event"] == "login").collect();
    assert_eq!(logins.len(), 1, "one accepted login: {text}");
    assert_eq!(logins[0]["result"], "accepted");
    assert_eq!(logins[0]["user"], "ada");
    assert_eq!(logins[0]["carrier"], "ssh");
    let calls: Vec<&Value> = lines.iter().filter(|l| l["event"] == "call").collect();
    assert_eq!(calls.len(), 3, "{text}");
    assert!(
        calls
            .iter()
            .all(|c| c["route"] == ROUTES && c["status"] == 200)
    );
    assert!(
        calls
            .iter()
            .all(|c| c["fingerprint"].as_str().unwrap().starts_with("SHA256:"))
    );
}

/// `GET path` on `addr` over HTTP/1.1; the body.
async fn http_get(addr: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_hears_ready_reloading_and_stopping() {
    let dir = Dir::new("notify");
    let key = generate_ed25519("k");
    std::fs::write(
        dir.path("authorized_keys"),
        format!("{}\n", key.public_key().to_openssh().unwrap()),
    )
    .unwrap();
    let socket_path = dir.path("notify.sock");
    let socket = tokio::net::UnixDatagram::bind(&socket_path).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut server = Running::start_with(
        &["serve", "--listen", &listen],
        &dir,
        &[("NOTIFY_SOCKET", socket_path.as_path())],
    );
    let next = || async {
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(15), socket.recv(&mut buf))
            .await
            .expect("a notification")
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(next().await.trim(), "READY=1");
    // Ready means listening: a login gets in at once.
    client(&listen, key, &dir).connect().await.unwrap();
    server.signal("HUP");
    assert_eq!(next().await.trim(), "RELOADING=1");
    assert_eq!(next().await.trim(), "READY=1");
    server.signal("TERM");
    assert_eq!(next().await.trim(), "STOPPING=1");
    server.line("server stopped").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_sessions_are_in_the_audit_log_the_metrics_and_recorded() {
    let dir = Dir::new("audit-terminal");
    let key = generate_ed25519("k");
    let id = dir.path("id");
    rrssh::keys::write_key_pair(&key, &id).unwrap();
    // A key without `pty` gets no terminal.
    let plain = generate_ed25519("plain");
    let plain_id = dir.path("plain");
    rrssh::keys::write_key_pair(&plain, &plain_id).unwrap();
    std::fs::write(
        dir.path("authorized_keys"),
        format!(
            "pty {}\n{}\n",
            key.public_key().to_openssh().unwrap(),
            plain.public_key().to_openssh().unwrap()
        ),
    )
    .unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    // Port 0: the listener says which port it got (no race for a free one).
    let admin = "127.0.0.1:0".to_owned();
    let audit = dir.path("audit.jsonl");
    let casts = dir.path("casts");
    std::fs::create_dir(&casts).unwrap();
    let mut server = Running::start(
        &[
            "serve",
            "--listen",
            &listen,
            "--terminal",
            "/bin/sh",
            "--record-terminals",
            casts.to_str().unwrap(),
            "--admin",
            &admin,
            "--audit",
            audit.to_str().unwrap(),
        ],
        &dir,
    );
    let admin = admin_address(&server.line("admin listening on").await);
    let host = load_private_key(dir.path("host"), None).unwrap();
    let (h, p) = listen.split_once(':').unwrap();
    let kh = dir.path("known_hosts");
    std::fs::write(
        &kh,
        format!("[{h}]:{p} {}\n", host.public_key().to_openssh().unwrap()),
    )
    .unwrap();
    let target = format!("ssh://ada@{listen}");
    let shell = |id: PathBuf| {
        let (target, kh) = (target.clone(), kh.clone());
        async move {
            rrssh(
                &[
                    "shell",
                    &target,
                    "-t",
                    "-i",
                    id.to_str().unwrap(),
                    "--known-hosts",
                    kh.to_str().unwrap(),
                    "echo from-the-shell; sleep 0.3; echo é-€-done",
                ],
                None,
            )
            .await
        }
    };
    let out = shell(id).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("from-the-shell"));
    let out = shell(plain_id).await;
    assert!(!out.status.success());

    let body = http_get(&admin, "/metrics").await;
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let terminals = |result: &str| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|m| m.metric == "rrssh_terminals_total")
            .filter(|m| m.labels.get("result") == Some(result))
            .map(|m| match m.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    assert_eq!(
        (
            terminals("opened"),
            terminals("closed"),
            terminals("refused")
        ),
        (1.0, 1.0, 1.0),
        "{body}"
    );

    server.signal("TERM");
    server.line("server stopped").await;
    let text = std::fs::read_to_string(&audit).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|l: &Value| l["event"] == "terminal")
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    let of = |result: &str| lines.iter().find(|l| l["result"] == result).unwrap();
    assert_eq!(
        of("opened")["command"],
        "echo from-the-shell; sleep 0.3; echo é-€-done",
        "{text}"
    );
    assert_eq!(
        of("opened")["fingerprint"],
        rrssh::keys::fingerprint(key.public_key())
    );
    assert!(
        of("closed")["duration_ms"].as_f64().unwrap() > 0.0,
        "{text}"
    );
    assert_eq!(
        of("refused")["fingerprint"],
        rrssh::keys::fingerprint(plain.public_key())
    );
    assert!(of("refused")["reason"].is_string(), "{text}");

    // One recording, of the session that ran (the refused one made none): an asciicast v2
    // header, then the output as it came, with its times.
    let files: Vec<_> = std::fs::read_dir(&casts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let cast = std::fs::read_to_string(&files[0]).unwrap();
    let mut lines = cast
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap());
    let header = lines.next().unwrap();
    assert_eq!(header["version"], 2, "{cast}");
    assert!(header["width"].as_u64().unwrap() > 0, "{cast}");
    assert_eq!(header["env"]["RRSSH_USER"], "ada");
    let events: Vec<Value> = lines.collect();
    let printed: String = events
        .iter()
        .filter(|e| e[1] == "o")
        .map(|e| e[2].as_str().unwrap())
        .collect();
    assert!(printed.contains("from-the-shell"), "{cast}");
    assert!(printed.contains("é-€-done"), "{cast}");
    let at = |word: &str| {
        events
            .iter()
            .find(|e| e[2].as_str().unwrap().contains(word))
            .map(|e| e[0].as_f64().unwrap())
            .unwrap()
    };
    assert!(at("done") - at("from-the-shell") >= 0.25, "{cast}");
}

/// The address in `admin listening on http://ADDR (…)`.
fn admin_address(line: &str) -> String {
    let rest = line.strip_prefix("admin listening on http://").unwrap();
    rest.split_whitespace().next().unwrap().to_owned()
}
