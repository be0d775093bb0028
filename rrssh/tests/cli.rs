//! The `rrssh` command-line tool, run as a built binary against a server and a hub started by
//! the test on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use rrssh::keys::{AuthorizedKeys, generate_ed25519, load_private_key};
use rrssh::routing::{get, post, stream};
use rrssh::{ApiError, Json, JsonStream, Params, Router, Server, StatusCode, routes};
use serde_json::{Value, json};

#[path = "cli/cluster.rs"]
mod cluster;
#[path = "cli/config.rs"]
mod config;
#[path = "cli/habits.rs"]
mod habits;
#[path = "cli/openssh.rs"]
mod openssh;
#[path = "cli/ops.rs"]
mod ops;
#[path = "cli/serve.rs"]
mod serve;
#[path = "cli/web.rs"]
mod web;

/// An upper-casing TCP service on loopback; returns its port.
async fn upper_service() -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut v = String::new();
                let _ = c.read_to_string(&mut v).await;
                let _ = c.write_all(v.to_uppercase().as_bytes()).await;
            });
        }
    });
    port
}

const BIN: &str = env!("CARGO_BIN_EXE_rrssh");

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("rrssh-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn rrssh(args: &[&str], stdin: Option<&str>) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(BIN)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).await.unwrap();
    }
    drop(input);
    tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("rrssh must finish")
        .unwrap()
}

/// A hub's `authorized_keys` in `dir`: a caller allowed to call every peer (its key written to
/// `dir/caller`, whose path is returned) and the service `svc` (whose key is returned).
fn hub_keys(dir: &Dir) -> (PathBuf, rrssh::keys::PrivateKey) {
    let caller = generate_ed25519("caller");
    let service = generate_ed25519("service");
    let id = dir.path("caller");
    rrssh::keys::write_key_pair(&caller, &id).unwrap();
    std::fs::write(
        dir.path("authorized_keys"),
        format!(
            "rrssh-scopes=\"call:*\" {}\nrrssh-users=\"svc\",rrssh-services=\"svc\" {}\n",
            caller.public_key().to_openssh().unwrap(),
            service.public_key().to_openssh().unwrap()
        ),
    )
    .unwrap();
    (id, service)
}

/// A reverse service of `app()` connected to the hub at `addr` as `user`, named `name`.
async fn reverse_service(
    addr: &str,
    user: &str,
    key: rrssh::keys::PrivateKey,
    host: &rrssh::keys::PrivateKey,
    name: &str,
) -> rrssh::Client {
    rrssh::Client::builder(addr)
        .user(user)
        .identity(key)
        .host_keys(rrssh::keys::HostKeyPolicy::Pinned(
            host.public_key().clone(),
        ))
        .serve(app())
        .service_name(name)
        .connect()
        .await
        .unwrap()
}

/// A log line's message: the line less its time and level (`2026-…Z  INFO hub listening…`).
fn message(line: &str) -> String {
    let mut words = line.splitn(2, ' ');
    match (words.next(), words.next()) {
        (Some(time), Some(rest))
            if time.ends_with('Z') && time.starts_with(|c: char| c.is_ascii_digit()) =>
        {
            let rest = rest.trim_start();
            let level = ["INFO ", "WARN ", "ERROR ", "DEBUG ", "TRACE "]
                .into_iter()
                .find(|l| rest.starts_with(l));
            level.map_or(rest, |l| &rest[l.len()..]).to_owned()
        }
        _ => line.to_owned(),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Fetches a user.
#[rrssh::get("/users/{id}")]
async fn get_user(rrssh::Path(id): rrssh::Path<u64>) -> Json<Value> {
    Json(json!({"id": id, "name": "ada"}))
}

fn app() -> Router {
    Router::new()
        .mount(routes![get_user])
        .route(
            "/search",
            get(|Params(q): Params<std::collections::BTreeMap<String, String>>| async move { Json(q) }),
        )
        .route(
            "/items",
            post(|Json(v): Json<Value>| async move { (StatusCode::CREATED, Json(json!({"created": v}))) })
                .put(|Json(v): Json<Value>| async move { Json(json!({"put": v})) })
                .patch(|Json(v): Json<Value>| async move { Json(json!({"patch": v})) })
                .delete(|| async { Json(json!({"deleted": true})) }),
        )
        .route(
            "/echo",
            post(|req: rrssh::Request| {
                let header = |n: &str| {
                    req.headers()
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let (trace, kind) = (header("x-trace"), header("content-type"));
                let query = req.uri().query().unwrap_or_default().to_owned();
                let body = req.into_body();
                async move {
                let body = http_body_util::BodyExt::collect(body)
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                Json(json!({
                    "trace": trace,
                    "type": kind,
                    "query": query,
                    "body": String::from_utf8_lossy(&body),
                }))
                }
            }),
        )
        .route(
            "/bytes",
            // Two chunks 300 ms apart, as a log is written.
            get(|| async {
                rrssh::ByteStream::new(futures_util::StreamExt::then(
                    futures_util::stream::iter(["first\n", "second\n"].into_iter().enumerate()),
                    |(i, line)| async move {
                        if i > 0 {
                            tokio::time::sleep(Duration::from_millis(300)).await;
                        }
                        Ok::<_, std::io::Error>(bytes::Bytes::from(line))
                    },
                ))
            }),
        )
        .route(
            "/boom",
            get(|| async { Err::<String, _>(ApiError::internal("the database is down")) }),
        )
        .route(
            "/ticks",
            stream(|| async {
                JsonStream::new(futures_util::StreamExt::then(futures_util::stream::iter(0u64..), |i| async move {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    json!({"tick": i})
                }))
            }),
        )
}

struct Setup {
    dir: Dir,
    _hub: rrssh::Hub,
    target: String,
    common: Vec<String>,
}

impl Setup {
    fn args<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        let mut v: Vec<&str> = rest.to_vec();
        v.extend(self.common.iter().map(String::as_str));
        v
    }
}

async fn setup(tag: &str) -> Setup {
    let dir = Dir::new(tag);
    // keygen makes the caller's key.
    let id = dir.path("id_ed25519");
    let out = rrssh(
        &["keygen", "-f", id.to_str().unwrap(), "-C", "ada@test"],
        None,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key = load_private_key(&id, None).unwrap();
    let host = generate_ed25519("host");
    let hub = Server::new()
        .router(app())
        .host_key(host.clone())
        // `pty`: the key is granted a terminal (`rrssh shell`, `rrssh webshell`).
        .authorized_keys(
            AuthorizedKeys::parse(
                &format!("pty {}", key.public_key().to_openssh().unwrap()),
                "authorized_keys",
            )
            .unwrap()
            .owned_by("ada"),
        )
        .permit_open(rrssh::tunnel::PermitOpen::parse("127.0.0.1:*").unwrap())
        .permit_listen(rrssh::tunnel::PermitOpen::parse("127.0.0.1:*").unwrap())
        .terminal(rrssh::terminal::Terminal::shell("/bin/sh"))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let port = hub.local_addr().port();
    std::fs::write(
        dir.path("known_hosts"),
        format!(
            "[127.0.0.1]:{port} {}\n",
            host.public_key().to_openssh().unwrap()
        ),
    )
    .unwrap();
    let common = vec![
        "-i".to_owned(),
        id.display().to_string(),
        "--known-hosts".to_owned(),
        dir.path("known_hosts").display().to_string(),
    ];
    Setup {
        dir,
        _hub: hub,
        target: format!("ssh://ada@127.0.0.1:{port}"),
        common,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keygen_writes_openssh_keys_and_refuses_to_overwrite() {
    let dir = Dir::new("keygen");
    let f = dir.path("k");
    let out = rrssh(
        &["keygen", "-f", f.to_str().unwrap(), "-C", "me@here"],
        None,
    )
    .await;
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(
        stdout.lines().last().unwrap().starts_with("SHA256:"),
        "{stdout}"
    );
    let public = std::fs::read_to_string(dir.path("k.pub")).unwrap();
    assert!(public.starts_with("ssh-ed25519 ") && public.trim_end().ends_with("me@here"));
    // The .pub is usable in authorized_keys.
    AuthorizedKeys::parse(&public, "k.pub").unwrap();
    let again = rrssh(&["keygen", "-f", f.to_str().unwrap()], None).await;
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("refusing to overwrite"),
        "{}",
        text(&again.stderr)
    );
    let forced = rrssh(&["keygen", "-f", f.to_str().unwrap(), "--force"], None).await;
    assert!(forced.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_every_verb_with_params_and_json_bodies() {
    let s = setup("verbs").await;
    let t = s.target.as_str();
    let json_of = |o: &Output| -> Value {
        serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("stdout: {}", text(&o.stdout)))
    };

    let out = rrssh(&s.args(&["call", t, "GET", "/users/7"]), None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(json_of(&out), json!({"id": 7, "name": "ada"}));
    // Piped: the body as received, compact.
    assert_eq!(text(&out.stdout), "{\"id\":7,\"name\":\"ada\"}\n");

    let out = rrssh(
        &s.args(&["call", t, "GET", "/search", "q==rust lang", "page==2"]),
        None,
    )
    .await;
    assert_eq!(json_of(&out), json!({"q": "rust lang", "page": "2"}));

    let out = rrssh(
        &s.args(&["call", t, "POST", "/items", "--json", r#"{"n":1}"#]),
        None,
    )
    .await;
    assert!(out.status.success());
    assert_eq!(json_of(&out), json!({"created": {"n": 1}}));

    std::fs::write(s.dir.path("body.json"), r#"{"n":2}"#).unwrap();
    let at = format!("@{}", s.dir.path("body.json").display());
    let out = rrssh(&s.args(&["call", t, "PUT", "/items", "--json", &at]), None).await;
    assert_eq!(json_of(&out), json!({"put": {"n": 2}}));

    let out = rrssh(
        &s.args(&["call", t, "PATCH", "/items", "--json", "-"]),
        Some(r#"{"n":3}"#),
    )
    .await;
    assert_eq!(json_of(&out), json!({"patch": {"n": 3}}));

    let out = rrssh(&s.args(&["call", t, "DELETE", "/items"]), None).await;
    assert_eq!(json_of(&out), json!({"deleted": true}));

    // -I: status and headers first.
    let out = rrssh(
        &s.args(&["call", "-I", t, "POST", "/items", "--json", "{}"]),
        None,
    )
    .await;
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("201 Created\n"), "{stdout}");
    assert!(
        stdout.contains("content-type: application/json"),
        "{stdout}"
    );

    // Pretty and coloured when asked (as on a terminal).
    let out = rrssh(
        &s.args(&["call", "--color", "always", t, "GET", "/users/7"]),
        None,
    )
    .await;
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("\x1b[") && stdout.contains("\n  "),
        "{stdout:?}"
    );

    // Invalid JSON is refused before anything is sent.
    let out = rrssh(
        &s.args(&["call", t, "POST", "/items", "--json", "{nope"]),
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not valid JSON"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_for_404_500_and_refused_keys() {
    let s = setup("codes").await;
    let t = s.target.as_str();
    // A server's error: one line on stderr, the exit code by status class.
    let out = rrssh(&s.args(&["call", t, "GET", "/nope"]), None).await;
    assert_eq!(out.status.code(), Some(4));
    assert!(out.stdout.is_empty());
    assert_eq!(
        text(&out.stderr),
        "rrssh: 404 Not Found: no route for GET /nope\n"
    );

    let out = rrssh(&s.args(&["call", t, "GET", "/boom"]), None).await;
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(
        text(&out.stderr),
        "rrssh: 500 Internal Server Error: the database is down\n"
    );
    // --raw: the error JSON as received, on stdout, for programs.
    let out = rrssh(&s.args(&["call", t, "GET", "/boom", "--raw"]), None).await;
    assert_eq!(out.status.code(), Some(5));
    let err: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"]["message"], "the database is down");

    // A key the server does not know: a transport error, exit 1, in plain words.
    let other = s.dir.path("other");
    rrssh(&["keygen", "-f", other.to_str().unwrap()], None).await;
    let kh = s.dir.path("known_hosts");
    let out = rrssh(
        &[
            "call",
            t,
            "GET",
            "/users/1",
            "-i",
            other.to_str().unwrap(),
            "--known-hosts",
            kh.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    println!("{stderr}");
    assert!(
        stderr.contains("refused user ada (tried: key SHA256:"),
        "{stderr}"
    );

    // An unknown host key: refused, with what to do.
    std::fs::write(s.dir.path("empty_known_hosts"), "").unwrap();
    let empty = s.dir.path("empty_known_hosts");
    let id = s.dir.path("id_ed25519");
    let out = rrssh(
        &[
            "call",
            t,
            "GET",
            "/users/1",
            "-i",
            id.to_str().unwrap(),
            "--known-hosts",
            empty.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is not known"),
        "{}",
        text(&out.stderr)
    );
    // --accept-new records it, and the next call works with strict checking.
    let out = rrssh(
        &[
            "call",
            t,
            "GET",
            "/users/1",
            "-i",
            id.to_str().unwrap(),
            "--known-hosts",
            empty.to_str().unwrap(),
            "--accept-new",
        ],
        None,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        std::fs::read_to_string(&empty)
            .unwrap()
            .contains("ssh-ed25519")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_with_a_limit_and_routes() {
    let s = setup("stream").await;
    let t = s.target.as_str();
    let out = rrssh(&s.args(&["stream", t, "/ticks", "--limit", "3"]), None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{\"tick\":0}\n{\"tick\":1}\n{\"tick\":2}\n"
    );

    let out = rrssh(&s.args(&["routes", t]), None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let routes: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let user = routes.iter().find(|r| r["path"] == "/users/{id}").unwrap();
    assert_eq!(user["method"], "GET");
    assert_eq!(user["summary"], "Fetches a user.");
    assert_eq!(user["args"][0], "id: u64 (path)");
    assert!(
        routes
            .iter()
            .any(|r| r["method"] == "STREAM" && r["path"] == "/ticks")
    );
    let out = rrssh(&s.args(&["routes", "--color", "always", t]), None).await;
    assert!(
        text(&out.stdout).contains("GET     /users/{id}"),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_its_peers_and_calls_through_it() {
    use tokio::io::AsyncBufReadExt;
    let dir = Dir::new("hub");
    let (id, service) = hub_keys(&dir);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let gw_port = free_port();
    let gw_token = "6f1c0e7d9a4b43a8b2d1e5f0c3a7b9d2";
    std::fs::write(
        dir.path("tokens"),
        format!("# gateway callers\nweb {gw_token} call:svc\n"),
    )
    .unwrap();
    let mut hub = tokio::process::Command::new(BIN)
        .args([
            "hub",
            "--listen",
            &listen,
            "--create-host-key",
            "--host-key",
        ])
        .arg(dir.path("hub_host"))
        .arg("--authorized-keys")
        .arg(dir.path("authorized_keys"))
        .args([
            "--gateway",
            &format!("127.0.0.1:{gw_port}"),
            "--gateway-tokens",
        ])
        .arg(dir.path("tokens"))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(hub.stdout.take().unwrap()).lines();
    let first = message(&lines.next_line().await.unwrap().unwrap());
    println!("{first}");
    assert!(
        first.starts_with(&format!("hub listening on {listen}")),
        "{first}"
    );
    let second = message(&lines.next_line().await.unwrap().unwrap());
    assert_eq!(
        second,
        format!("gateway listening on http://127.0.0.1:{gw_port} (1 tokens)")
    );
    let host_key = load_private_key(dir.path("hub_host"), None).unwrap();

    // A service connects to the hub; the hub prints the event.
    let svc = reverse_service(&listen, "svc", service, &host_key, "svc").await;
    let event = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let event = message(&event);
    println!("{event}");
    assert!(event.starts_with("connected    svc svc SHA256:"), "{event}");

    std::fs::write(
        dir.path("known_hosts"),
        format!(
            "[127.0.0.1]:{port} {}\n",
            host_key.public_key().to_openssh().unwrap()
        ),
    )
    .unwrap();
    let common = [
        "-i",
        id.to_str().unwrap(),
        "--known-hosts",
        dir.path("known_hosts").to_str().unwrap(),
    ]
    .map(str::to_owned);
    let with = |rest: &[&str]| -> Vec<String> {
        rest.iter()
            .map(|s| (*s).to_owned())
            .chain(common.iter().cloned())
            .collect()
    };
    let run = |args: Vec<String>| async move {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        rrssh(&refs, None).await
    };
    let out = run(with(&["peers", &format!("ssh://127.0.0.1:{port}")])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let peers: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0]["name"], "svc");

    let through = format!("hub://127.0.0.1:{port}/svc");
    let out = run(with(&["call", &through, "GET", "/users/9"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        json!({"id": 9, "name": "ada"})
    );
    let out = run(with(&["stream", &through, "/ticks", "-n", "2"])).await;
    assert_eq!(text(&out.stdout), "{\"tick\":0}\n{\"tick\":1}\n");
    let out = run(with(&[
        "call",
        &format!("hub://127.0.0.1:{port}/ghost"),
        "GET",
        "/x",
    ]))
    .await;
    assert_eq!(
        out.status.code(),
        Some(5),
        "a peer that is not connected is 503"
    );

    // The same service over plain HTTP, through the hub's gateway.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", gw_port))
        .await
        .unwrap();
    tcp.write_all(
        format!(
            "GET /peers/svc/users/9 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {gw_token}\r\nconnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).await.unwrap();
    assert!(raw.starts_with("HTTP/1.1 200 OK"), "{raw}");
    assert!(raw.contains(r#"{"id":9,"name":"ada"}"#), "{raw}");

    // The hub counts what it relayed to the service: four calls (a call, a stream, one through
    // the gateway, and a 500), one of them an error, none waiting.
    let out = run(with(&["call", &through, "GET", "/boom"])).await;
    assert_eq!(out.status.code(), Some(5));
    let out = run(with(&["peers", &format!("ssh://127.0.0.1:{port}")])).await;
    let peers: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let stats = &peers[0]["stats"];
    assert_eq!(stats["calls"], 4, "{stats}");
    assert_eq!(stats["errors"], 1, "{stats}");
    assert_eq!(stats["waiting"], 0, "{stats}");
    assert!(stats["mean_answer_us"].as_u64().unwrap() > 0, "{stats}");
    let out = run(with(&[
        "peers",
        &format!("ssh://127.0.0.1:{port}"),
        "--color",
        "always",
    ]))
    .await;
    let table = text(&out.stdout);
    let mut rows = table.lines();
    assert!(rows.next().unwrap().starts_with("NAME"), "{table}");
    let row: Vec<&str> = rows.next().unwrap().split_whitespace().collect();
    assert_eq!(
        (row[0], row[4], row[5], row[6]),
        ("svc", "4", "1", "0"),
        "{table}"
    );

    svc.close().await;
    let _ = hub.kill().await;
    let _ = Path::new(".");
}

/// Runs `rrssh forward FLAG SPEC TARGET` until dropped; returns it with its first line.
async fn forwarding(s: &Setup, flag: &str, spec: &str) -> (tokio::process::Child, String) {
    running(&s.args(&["forward", flag, spec, &s.target])).await
}

/// Runs `rrssh ARGS` until dropped; returns it with its first line.
async fn running(args: &[&str]) -> (tokio::process::Child, String) {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args);
    running_cmd(cmd).await
}

/// Runs `cmd` until dropped; returns it with its first line.
async fn running_cmd(mut cmd: tokio::process::Command) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let first = message(&first);
    // Keep reading, so the tool's later lines have somewhere to go.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, first)
}

/// Sends `word` to 127.0.0.1:`port`, half-closes, and reads the answer.
async fn exchange(port: u16, word: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    c.write_all(word.as_bytes()).await.unwrap();
    c.shutdown().await.unwrap();
    let mut back = String::new();
    tokio::time::timeout(Duration::from_secs(10), c.read_to_string(&mut back))
        .await
        .unwrap()
        .unwrap();
    back
}

use rrssh_test_support::free_port;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_carries_tcp_like_ssh_dash_l_and_dash_r() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = setup("forward").await;
    // The target: answers each connection with what it read, upper-cased.
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_port = target.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = target.accept().await {
            tokio::spawn(async move {
                let mut v = String::new();
                let _ = c.read_to_string(&mut v).await;
                let _ = c.write_all(v.to_uppercase().as_bytes()).await;
            });
        }
    });

    // -L: listen here, connect from the server.
    let local = free_port();
    let (mut child, first) =
        forwarding(&s, "-L", &format!("{local}:127.0.0.1:{target_port}")).await;
    assert!(
        first.starts_with(&format!(
            "forwarding 127.0.0.1:{local} to 127.0.0.1:{target_port}"
        )),
        "{first}"
    );
    for word in ["tunnel", "again"] {
        assert_eq!(exchange(local, word).await, word.to_uppercase());
    }
    let _ = child.kill().await;

    // -R: the server listens, and connections come back to the target on this side.
    let remote = free_port();
    let (mut child, first) =
        forwarding(&s, "-R", &format!("{remote}:127.0.0.1:{target_port}")).await;
    assert!(
        first.starts_with(&format!("the server listens on 127.0.0.1:{remote}")),
        "{first}"
    );
    assert_eq!(exchange(remote, "back").await, "BACK");
    let _ = child.kill().await;

    // A malformed spec is refused in plain words, exit status 1.
    let out = rrssh(&s.args(&["forward", "-L", "nonsense", &s.target]), None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("expected [BIND:]PORT:HOST:HOSTPORT"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_runs_a_command_in_a_terminal_and_exits_with_its_status() {
    let s = setup("shell").await;
    // -t: a terminal even though the input is not one (the options before the command).
    let mut args = s.args(&["shell", &s.target, "-t"]);
    args.push("echo hi-$((6*7)); tty; exit 3");
    let out = rrssh(&args, None).await;
    let stdout = text(&out.stdout);
    assert!(stdout.contains("hi-42"), "{stdout:?} {}", text(&out.stderr));
    assert!(stdout.contains("/dev/pts/"), "{stdout:?}");
    assert_eq!(out.status.code(), Some(3));
    // Typed input reaches an interactive shell.
    let out = rrssh(
        &s.args(&["shell", &s.target]),
        Some("echo typed-$((2+3))\nexit 7\n"),
    )
    .await;
    assert!(
        text(&out.stdout).contains("typed-5"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(out.status.code(), Some(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webshell_serves_a_terminal_to_the_browser_behind_a_token() {
    use futures_util::SinkExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let s = setup("webshell").await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let (mut child, first) = running(&s.args(&[
        "webshell",
        &s.target,
        "read x; echo web-$x-$((6*7)); exit 5",
        "--listen",
        &listen,
    ]))
    .await;
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("the address to open: {first}"));
    let token = url.split_once("?token=").unwrap().1;
    assert_eq!(url, format!("http://{listen}/?token={token}"));

    let status = |path: String| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        c.write_all(
            format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        let mut back = String::new();
        c.read_to_string(&mut back).await.unwrap();
        back[9..12].to_owned()
    };
    assert_eq!(status(format!("/?token={token}")).await, "200");
    assert_eq!(status("/?token=guess".to_owned()).await, "401");

    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{listen}/socket?token={token}"))
            .await
            .unwrap();
    ws.send(Message::Binary("typed\n".into())).await.unwrap();
    let (out, exit) = terminal_output(&mut ws).await;
    assert!(out.contains("web-typed-42"), "{out:?}");
    assert_eq!(exit, Some(json!({"type": "exit", "status": 5})));
    let _ = child.kill().await;
}

/// What a web terminal's WebSocket says until it closes (10 s at most): the terminal's output,
/// and its last control message (`{"type": "exit", …}`).
async fn terminal_output<S>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
) -> (String, Option<Value>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let mut out = String::new();
    let mut exit = None;
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(m)) = ws.next().await {
            match m {
                Message::Binary(b) => out.push_str(&String::from_utf8_lossy(&b)),
                Message::Text(t) => exit = Some(serde_json::from_str::<Value>(&t).unwrap()),
                _ => {}
            }
        }
    })
    .await
    .unwrap();
    (out, exit)
}
