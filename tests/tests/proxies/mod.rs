//! Dialing through real proxies: an HTTP proxy (`tinyproxy`, CONNECT with Basic
//! authentication) and a SOCKS5 proxy (Dante's `danted`, with a user name and password), for a
//! client, a reverse service that stays connected, and bad credentials.
//!
//! Dante checks SOCKS passwords against the system's users; its `danted` runs in a mount
//! namespace of its own where `/etc/shadow` is a copy giving the user running the tests a
//! password (nothing on the machine changes), which needs root and `unshare`. Without the
//! proxies these tests say so and pass, unless `RRSSH_REQUIRE_PROXIES` is set (CI sets it,
//! after installing them).

use std::path::PathBuf;
use std::time::Duration;

use rrssh::client::CallExt;
use rrssh::proxy::Proxy;
use rrssh::routing::get;
use rrssh::transport::ConnectError;
use rrssh::{Json, Router};
use serde_json::{Value, json};

use crate::openssh::{TempDir, current_user, free_port};
use crate::ssh::{Keys, client, server, server_builder};

pub(crate) const SOCKS_PASSWORD: &str = "socks pass";

fn tool(names: &[&str]) -> Option<PathBuf> {
    names.iter().map(PathBuf::from).find(|p| p.exists())
}

fn missing(what: &str) {
    assert!(
        std::env::var_os("RRSSH_REQUIRE_PROXIES").is_none(),
        "{what} is required (RRSSH_REQUIRE_PROXIES is set)"
    );
    crate::skipped(&format!(
        "{what} (apt-get install tinyproxy dante-server; SOCKS needs root)"
    ));
}

pub(crate) use rrssh_test_support::{Child, spawn_until_listening};

/// `tinyproxy` on 127.0.0.1 asking for Basic authentication `ada:secret`.
pub(crate) async fn tinyproxy(dir: &TempDir) -> Option<(Child, u16)> {
    match rrssh_test_support::tinyproxy(&dir.0).await {
        Ok(running) => Some(running),
        Err(what) => {
            missing(&what);
            None
        }
    }
}

/// Dante on 127.0.0.1 asking for the user running the tests with `SOCKS_PASSWORD`.
pub(crate) async fn danted(dir: &TempDir) -> Option<(Child, u16)> {
    let Some(bin) = tool(&["/usr/sbin/danted", "/usr/bin/danted"]) else {
        missing("Dante's danted");
        return None;
    };
    let root = is_root();
    if !root || tool(&["/usr/bin/unshare", "/bin/unshare"]).is_none() {
        missing("root and unshare(1), for Dante to check a password");
        return None;
    }
    let user = current_user();
    let digest = std::process::Command::new("openssl")
        .args(["passwd", "-6", SOCKS_PASSWORD])
        .output()
        .expect("openssl passwd");
    let digest = String::from_utf8(digest.stdout).unwrap();
    let mut shadow: Vec<String> = std::fs::read_to_string("/etc/shadow")
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with(&format!("{user}:")))
        .map(str::to_owned)
        .collect();
    shadow.push(format!("{user}:{}:19000:0:99999:7:::", digest.trim()));
    let shadow_path = dir.path("shadow");
    std::fs::write(&shadow_path, shadow.join("\n") + "\n").unwrap();
    let port = free_port();
    let conf = dir.path("danted.conf");
    std::fs::write(
        &conf,
        format!(
            "logoutput: stderr\ninternal: 127.0.0.1 port = {port}\nexternal: 127.0.0.1\n\
             socksmethod: username\nclientmethod: none\nuser.privileged: root\n\
             user.unprivileged: nobody\nclient pass {{ from: 127.0.0.1/32 to: 0.0.0.0/0 }}\n\
             socks pass {{ from: 127.0.0.1/32 to: 0.0.0.0/0 }}\n"
        ),
    )
    .unwrap();
    let script = format!(
        "mount --bind '{}' /etc/shadow && exec '{}' -f '{}'",
        shadow_path.display(),
        bin.display(),
        conf.display()
    );
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
    Some((spawn_until_listening(cmd, port).await, port))
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn hello() -> Router {
    Router::new().route("/hello", get(|| async { Json(json!({"msg": "hello"})) }))
}

pub(crate) fn escaped(s: &str) -> String {
    s.replace(' ', "%20")
}

async fn calls_through(proxy: &str, good_auth: &str, bad_auth: &str) {
    let keys = Keys::new();
    let hub = server(&keys, Some(hello())).await;
    // A call through the proxy.
    let c = client(&keys, &hub)
        .proxy(Proxy::parse(&format!("{}{good_auth}@{proxy}", scheme_of(proxy))).unwrap())
        .connect()
        .await
        .expect("connect through the proxy");
    let v: Value = c.get("/hello").receive().await.unwrap();
    assert_eq!(v, json!({"msg": "hello"}));
    c.close().await;
    // Bad credentials: a clear error naming the proxy, not an SSH failure.
    let err = client(&keys, &hub)
        .proxy(Proxy::parse(&format!("{}{bad_auth}@{proxy}", scheme_of(proxy))).unwrap())
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Proxy(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("refused the tunnel") && !text.contains("wrong"),
        "{text}"
    );
}

fn scheme_of(proxy: &str) -> &'static str {
    if proxy.starts_with("socks") {
        ""
    } else {
        "http://"
    }
}

#[tokio::test]
async fn a_client_calls_through_an_http_proxy_with_basic_auth() {
    let dir = TempDir::new("proxy-http");
    let Some((_proxy, port)) = tinyproxy(&dir).await else {
        return;
    };
    calls_through(&format!("127.0.0.1:{port}"), "ada:secret", "ada:wrong").await;
}

#[tokio::test]
async fn a_client_calls_through_a_socks5_proxy_with_a_password() {
    let dir = TempDir::new("proxy-socks");
    let Some((_proxy, port)) = danted(&dir).await else {
        return;
    };
    let user = current_user();
    let keys = Keys::new();
    let hub = server(&keys, Some(hello())).await;
    for scheme in ["socks5", "socks5h"] {
        let url = format!(
            "{scheme}://{user}:{}@127.0.0.1:{port}",
            escaped(SOCKS_PASSWORD)
        );
        let c = client(&keys, &hub)
            .proxy(Proxy::parse(&url).unwrap())
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connect through {scheme}: {e}"));
        let v: Value = c.get("/hello").receive().await.unwrap();
        assert_eq!(v, json!({"msg": "hello"}));
        c.close().await;
    }
    let url = format!("socks5://{user}:wrong@127.0.0.1:{port}");
    let err = client(&keys, &hub)
        .proxy(Proxy::parse(&url).unwrap())
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Proxy(_)), "{err}");
}

#[tokio::test]
async fn a_reverse_service_stays_connected_through_a_proxy() {
    let dir = TempDir::new("proxy-reverse");
    let Some((proxy, port)) = tinyproxy(&dir).await else {
        return;
    };
    let keys = Keys::new();
    let hub = server_builder(&keys)
        .relay(true)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let via = Proxy::parse(&format!("http://ada:secret@127.0.0.1:{port}")).unwrap();
    let service = client(&keys, &hub)
        .proxy(via)
        .serve(hello())
        .service_name("behind-proxy")
        .backoff(
            rrssh::transport::Backoff::default()
                .initial(Duration::from_millis(50))
                .max(Duration::from_millis(200)),
        )
        .connect_persistent();
    answers_through_the_hub(&hub, &service, "the service connects through the proxy").await;
    // The proxy restarts (every tunnel through it is cut): the service comes back through it.
    drop(proxy);
    assert!(
        crate::ssh::eventually(Duration::from_secs(5), || !service.is_connected()).await,
        "the cut was noticed"
    );
    assert!(
        crate::ssh::eventually(Duration::from_secs(5), || !hub
            .peer("behind-proxy")
            .is_connected())
        .await,
        "the hub noticed the cut"
    );
    let _proxy = restart_tinyproxy(&dir, port).await;
    answers_through_the_hub(&hub, &service, "the service is back through the proxy").await;
}

/// Waits for `service` to be connected, then calls it through `hub`.
async fn answers_through_the_hub(
    hub: &rrssh::Hub,
    service: &rrssh::ReconnectingClient,
    what: &str,
) {
    tokio::time::timeout(Duration::from_secs(10), service.connected())
        .await
        .expect(what);
    // The service is connected once its handshake is over; the hub registers its name as it
    // reads the service's HELLO, which may come a moment later.
    assert!(
        crate::ssh::eventually(Duration::from_secs(5), || hub
            .peer("behind-proxy")
            .is_connected())
        .await,
        "{what}: the hub registers the service"
    );
    let v: Value = hub
        .peer("behind-proxy")
        .get("/hello")
        .receive()
        .await
        .unwrap();
    assert_eq!(v, json!({"msg": "hello"}));
}

/// Starts `tinyproxy` again with the configuration `tinyproxy` wrote, on its port.
async fn restart_tinyproxy(dir: &TempDir, port: u16) -> Child {
    let bin = tool(&["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"]).unwrap();
    let mut cmd = std::process::Command::new(bin);
    cmd.args(["-d", "-c"]).arg(dir.path("tinyproxy.conf"));
    spawn_until_listening(cmd, port).await
}
