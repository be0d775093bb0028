//! SSH over WebSocket: clients dialing `ws://` and `wss://` (directly and through a real
//! proxy), and the web listener serving SSH over WebSocket, raw SSH and the HTTP gateway on one
//! port, with certificates from `openssl`.

mod acme;
mod bounds;
mod nginx;

use std::path::Path;
use std::time::Duration;

use rrssh::client::CallExt;
use rrssh::routing::get;
use rrssh::tls::{ServerCertificate, TrustedRoots};
use rrssh::transport::ConnectError;
use rrssh::websocket::{WebListener, WebSocketError};
use rrssh::{Json, Router};
use serde_json::{Value, json};

use crate::openssh::TempDir;
use crate::ssh::{Keys, client_to, eventually, server_builder};

fn hello() -> Router {
    Router::new().route("/hello", get(|| async { Json(json!({"msg": "hello"})) }))
}

/// A private CA (`ca.pem`) and a certificate for 127.0.0.1 and localhost it signed
/// (`cert.pem`, `key.pem`), in `dir`; `tag` tells two certificates apart (their subject).
pub(crate) fn certificates(dir: &Path, tag: &str) {
    rrssh_test_support::Pki::new(dir, "ca")
        .and_then(|ca| ca.server(tag))
        .unwrap();
}

/// A hub serving `hello` with caller access, and a web listener on it with TLS (the
/// gateway's routes too, if given); returns the hub and the web port's address.
pub(crate) async fn hub_with_https(
    keys: &Keys,
    dir: &TempDir,
    http: Option<axum::Router>,
) -> (rrssh::Hub, std::net::SocketAddr) {
    certificates(&dir.0, "first");
    let hub = server_builder(keys)
        .router(hello())
        .relay(true)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let cert = ServerCertificate::load(dir.path("cert.pem"), dir.path("key.pem")).unwrap();
    let mut web = WebListener::bind("127.0.0.1:0").await.unwrap().tls(cert);
    if let Some(routes) = http {
        web = web.http(routes);
    }
    let addr = web.serve(&hub).unwrap();
    (hub, addr)
}

fn roots(dir: &TempDir) -> TrustedRoots {
    TrustedRoots::from_pem_file(dir.path("ca.pem")).unwrap()
}

/// A client of the server at `url` authenticating with `keys.client`, pinning the host key.
fn client_at(keys: &Keys, url: &str) -> rrssh::transport::ClientBuilder {
    rrssh::Client::builder(url)
        .user("ada")
        .identity(keys.client.clone())
        .host_keys(rrssh::keys::HostKeyPolicy::Pinned(
            keys.host.public_key().clone(),
        ))
}

async fn says_hello(c: &rrssh::Client) {
    let v: Value = c.get("/hello").receive().await.unwrap();
    assert_eq!(v, json!({"msg": "hello"}));
}

/// Connects with `builder` (`what` says how, if it fails), gets hello, and closes.
async fn hello_through(builder: rrssh::transport::ClientBuilder, what: &str) {
    let c = builder.connect().await.expect(what);
    says_hello(&c).await;
    c.close().await;
}

#[tokio::test]
async fn wss_ws_and_raw_ssh_reach_one_server_and_its_port() {
    let dir = TempDir::new("wss");
    let keys = Keys::new();
    let (hub, web) = hub_with_https(&keys, &dir, None).await;
    // SSH over WebSocket over TLS, checked against the private CA.
    let url = format!("wss://127.0.0.1:{}", web.port());
    let c = client_at(&keys, &url)
        .tls_roots(roots(&dir))
        .connect()
        .await
        .expect("connect over wss://");
    says_hello(&c).await;
    c.close().await;
    // The name in the certificate is checked too: `localhost` is in it.
    let c = client_at(&keys, &format!("wss://localhost:{}", web.port()))
        .tls_roots(roots(&dir))
        .connect()
        .await
        .expect("connect over wss://localhost");
    says_hello(&c).await;
    c.close().await;
    // Raw SSH on the same port.
    let c = client_to(&keys, web)
        .no_proxy()
        .connect()
        .await
        .expect("raw SSH on the web port");
    says_hello(&c).await;
    c.close().await;
    // And on the hub's own SSH port, as before.
    let c = client_to(&keys, hub.local_addr()).connect().await.unwrap();
    says_hello(&c).await;
    c.close().await;
    // ws:// without TLS, on a listener of its own.
    let plain = WebListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .serve(&hub)
        .unwrap();
    let c = client_at(&keys, &format!("ws://127.0.0.1:{}", plain.port()))
        .connect()
        .await
        .expect("connect over ws://");
    says_hello(&c).await;
    c.close().await;
}

#[tokio::test]
async fn bad_certificates_paths_and_schemes_fail_clearly() {
    let dir = TempDir::new("wss-bad");
    let keys = Keys::new();
    let (hub, web) = hub_with_https(&keys, &dir, None).await;
    let url = format!("wss://127.0.0.1:{}", web.port());
    // The system's authorities do not know the private CA.
    let err = client_at(&keys, &url).connect().await.unwrap_err();
    assert!(
        matches!(err, ConnectError::WebSocket(WebSocketError::Tls { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    // A path the server does not serve.
    let err = client_at(&keys, &format!("{url}/nothing-here"))
        .tls_roots(roots(&dir))
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectError::WebSocket(WebSocketError::Refused { status: 404, .. })
        ),
        "{err}"
    );
    // ws:// to the TLS port: told to use TLS, not an SSH failure.
    let err = client_at(&keys, &format!("ws://127.0.0.1:{}", web.port()))
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectError::WebSocket(WebSocketError::Refused { status: 400, .. })
        ),
        "{err}"
    );
    // wss:// to the raw SSH port: a TLS error.
    let err = client_at(
        &keys,
        &format!("wss://127.0.0.1:{}", hub.local_addr().port()),
    )
    .tls_roots(roots(&dir))
    .connect()
    .await
    .unwrap_err();
    assert!(
        matches!(err, ConnectError::WebSocket(WebSocketError::Tls { .. })),
        "{err}"
    );
    // A malformed URL.
    let err = client_at(&keys, "wss://127.0.0.1:0")
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::BadTarget(_)), "{err}");
    // A wrong host key over wss is refused as over TCP.
    let other = Keys::new();
    let err = client_at(&other, &url)
        .identity(keys.client.clone())
        .tls_roots(roots(&dir))
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::HostKey(_)), "{err}");
}

#[tokio::test]
async fn a_reloaded_certificate_serves_new_connections() {
    let dir = TempDir::new("wss-reload");
    let keys = Keys::new();
    let hub = server_builder(&keys)
        .router(hello())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    certificates(&dir.0, "first");
    let cert = ServerCertificate::load(dir.path("cert.pem"), dir.path("key.pem")).unwrap();
    let first = cert.leaf();
    let web = WebListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .tls(cert.clone())
        .serve(&hub)
        .unwrap();
    let url = format!("wss://127.0.0.1:{}", web.port());
    let old = client_at(&keys, &url)
        .tls_roots(roots(&dir))
        .connect()
        .await
        .unwrap();
    // A broken file is refused and the certificate in use stays.
    std::fs::write(dir.path("key.pem"), "not a key").unwrap();
    assert!(cert.reload().is_err());
    assert_eq!(cert.leaf(), first);
    certificates(&dir.0, "second");
    cert.reload().unwrap();
    assert_ne!(cert.leaf(), first, "the new certificate is in use");
    let new = client_at(&keys, &url)
        .tls_roots(roots(&dir))
        .connect()
        .await
        .unwrap();
    says_hello(&new).await;
    says_hello(&old).await;
}

#[tokio::test]
async fn a_reverse_service_over_wss_through_an_http_proxy_is_called_by_ssh_and_https() {
    let dir = TempDir::new("wss-proxy");
    let Some((_proxy, port)) = crate::proxies::tinyproxy(&dir).await else {
        return;
    };
    let via = rrssh::proxy::Proxy::parse(&format!("http://ada:secret@127.0.0.1:{port}")).unwrap();
    reverse_service_over_wss(&dir, via).await;
}

#[tokio::test]
async fn a_reverse_service_over_wss_through_a_socks5_proxy_is_called_by_ssh_and_https() {
    let dir = TempDir::new("wss-socks");
    let Some((_proxy, port)) = crate::proxies::danted(&dir).await else {
        return;
    };
    // socks5h: the proxy resolves `localhost`, the name the certificate is checked against.
    let via = rrssh::proxy::Proxy::parse(&format!(
        "socks5h://{}:{}@127.0.0.1:{port}",
        crate::openssh::current_user(),
        crate::proxies::escaped(crate::proxies::SOCKS_PASSWORD)
    ))
    .unwrap();
    reverse_service_over_wss(&dir, via).await;
}

/// A reverse service dialing a hub's TLS port over `wss://` through `via`, called through the
/// hub over SSH and through the gateway on that port by curl.
async fn reverse_service_over_wss(dir: &TempDir, via: rrssh::proxy::Proxy) {
    let keys = Keys::new();
    // The hub, with the gateway on its TLS port.
    let hub = server_builder(&keys)
        .relay(true)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let mut tokens = rrssh::gateway::Tokens::new();
    tokens.insert(
        "ops",
        "ops-token-0123456789",
        rrssh::auth::Grants::parse("call:*").unwrap(),
    );
    let gateway = rrssh::gateway::Gateway::new(hub.registry())
        .tokens(tokens)
        .into_router();
    certificates(&dir.0, "hub");
    let cert = ServerCertificate::load(dir.path("cert.pem"), dir.path("key.pem")).unwrap();
    let web = WebListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .tls(cert)
        .http(gateway)
        .serve(&hub)
        .unwrap();
    let service = client_at(&keys, &format!("wss://localhost:{}", web.port()))
        .tls_roots(roots(dir))
        .proxy(via)
        .serve(hello())
        .service_name("behind-wss")
        .connect_persistent();
    tokio::time::timeout(Duration::from_secs(10), service.connected())
        .await
        .expect("the service connects over wss:// through the proxy");
    assert!(
        eventually(Duration::from_secs(5), || hub
            .peer("behind-wss")
            .is_connected())
        .await,
        "the hub registers it"
    );
    // Called through the hub over SSH…
    let v: Value = hub
        .peer("behind-wss")
        .get("/hello")
        .receive()
        .await
        .unwrap();
    assert_eq!(v, json!({"msg": "hello"}));
    // …and over HTTPS on the same port, by curl.
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("RRSSH_REQUIRE_CURL").is_none(),
            "curl is required (RRSSH_REQUIRE_CURL is set)"
        );
        crate::skipped("curl (apt-get install curl)");
        return;
    }
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--fail-with-body", "--cacert"])
        .arg(dir.path("ca.pem"))
        .args(["-H", "authorization: Bearer ops-token-0123456789"])
        .arg(format!(
            "https://localhost:{}/peers/behind-wss/hello",
            web.port()
        ))
        .output()
        .await
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, json!({"msg": "hello"}));
}

#[tokio::test]
async fn a_persistent_client_over_ws_comes_back_after_the_server_restarts() {
    let keys = Keys::new();
    let start = |port: u16| {
        let keys = &keys;
        async move {
            let hub = server_builder(keys)
                .router(hello())
                .bind("127.0.0.1:0")
                .await
                .unwrap();
            let listener = WebListener::bind(("127.0.0.1", port)).await.unwrap();
            let addr = listener.serve(&hub).unwrap();
            (hub, addr)
        }
    };
    let (hub, web) = start(0).await;
    let client = client_at(&keys, &format!("ws://127.0.0.1:{}", web.port()))
        .backoff(
            rrssh::transport::Backoff::default()
                .initial(Duration::from_millis(50))
                .max(Duration::from_millis(200)),
        )
        .connect_persistent();
    tokio::time::timeout(Duration::from_secs(10), client.connected())
        .await
        .unwrap();
    let v: Value = client.get("/hello").receive().await.unwrap();
    assert_eq!(v, json!({"msg": "hello"}));
    drop(hub);
    assert!(
        eventually(Duration::from_secs(5), || !client.is_connected()).await,
        "the restart is noticed"
    );
    let (_hub, _) = start(web.port()).await;
    tokio::time::timeout(Duration::from_secs(10), client.connected())
        .await
        .expect("back over ws:// after the restart");
    let v: Value = client.get("/hello").receive().await.unwrap();
    assert_eq!(v, json!({"msg": "hello"}));
}
