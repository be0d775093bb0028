//! Behind nginx ending TLS: the example configuration `examples/nginx/rrssh.conf`, run by a real
//! nginx in front of a web listener without TLS (`rrssh serve --ws`). Without nginx this test
//! says so and passes, unless `RRSSH_REQUIRE_NGINX` is set (CI sets it, after installing it).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rrssh::client::CallExt;
use rrssh::routing::get;
use rrssh::websocket::WebListener;
use rrssh::{Json, Router};

use super::{certificates, client_at, hello, roots, says_hello};
use crate::openssh::{TempDir, free_port};
use crate::ssh::{Keys, eventually, server_builder};
use rrssh_test_support::{Child, spawn_until_listening};

const EXAMPLE: &str = include_str!("../../../examples/nginx/rrssh.conf");

/// `text` with `from` replaced by `to`, which must be there: the example and the test agree.
fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the nginx example has no `{from}`");
    text.replace(from, to)
}

fn nginx_binary() -> Option<PathBuf> {
    let found = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("RRSSH_REQUIRE_NGINX").is_none(),
            "nginx is required (RRSSH_REQUIRE_NGINX is set)"
        );
        crate::skipped("nginx (apt-get install nginx)");
    }
    found
}

/// nginx running the example, for `localhost` on a port of its own, passing to `upstream`, with
/// the certificate `certificates` made in `dir`.
async fn nginx(bin: PathBuf, dir: &TempDir, upstream: SocketAddr) -> (Child, u16) {
    let port = free_port();
    let site = replaced(
        EXAMPLE,
        "listen 443 ssl;",
        &format!("listen 127.0.0.1:{port} ssl;"),
    );
    let site = replaced(
        &site,
        "server_name rrssh.example.com;",
        "server_name localhost;",
    );
    let site = replaced(
        &site,
        "/etc/letsencrypt/live/rrssh.example.com/fullchain.pem",
        &dir.path("cert.pem").display().to_string(),
    );
    let site = replaced(
        &site,
        "/etc/letsencrypt/live/rrssh.example.com/privkey.pem",
        &dir.path("key.pem").display().to_string(),
    );
    let site = replaced(
        &site,
        "proxy_pass http://127.0.0.1:8080;",
        &format!("proxy_pass http://{upstream};"),
    );
    std::fs::write(dir.path("site.conf"), site).unwrap();
    let prefix = dir.path("nginx");
    std::fs::create_dir_all(&prefix).unwrap();
    let p = prefix.display();
    // What a distribution's nginx.conf holds around the site, in the test's own directory.
    let main = format!(
        "daemon off;\nworker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/error.log warn;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n\
         fastcgi_temp_path {p}/fastcgi;\n  uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n\
         include {};\n}}\n",
        dir.path("site.conf").display()
    );
    std::fs::write(dir.path("nginx.conf"), main).unwrap();
    let mut cmd = std::process::Command::new(bin);
    cmd.arg("-p")
        .arg(&prefix)
        .arg("-e")
        .arg(prefix.join("error.log"))
        .arg("-c")
        .arg(dir.path("nginx.conf"));
    (spawn_until_listening(cmd, port).await, port)
}

#[tokio::test]
async fn behind_nginx_ending_tls_clients_and_reverse_services_get_through() {
    let Some(bin) = nginx_binary() else {
        return;
    };
    let dir = TempDir::new("nginx");
    let keys = Keys::new();
    // One answer larger than a WebSocket message and than nginx's buffers.
    let big = "x".repeat(1 << 20);
    let routes = hello().route(
        "/big",
        get(move || {
            let big = big.clone();
            async move { Json(big) }
        }),
    );
    let hub = server_builder(&keys)
        .router(routes)
        .relay(true)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let ws = WebListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .serve(&hub)
        .unwrap();
    certificates(&dir.0, "nginx");
    let (_nginx, port) = nginx(bin, &dir, ws).await;
    let url = format!("wss://localhost:{port}");

    let c = client_at(&keys, &url)
        .tls_roots(roots(&dir))
        .connect()
        .await
        .expect("connect over wss:// through nginx");
    says_hello(&c).await;
    let answer: String = c.get("/big").receive().await.unwrap();
    assert_eq!(answer.len(), 1 << 20);
    c.close().await;

    let service = client_at(&keys, &url)
        .tls_roots(roots(&dir))
        .serve(Router::new().route("/where", get(|| async { Json("behind nginx") })))
        .service_name("behind-nginx")
        .connect_persistent();
    tokio::time::timeout(Duration::from_secs(10), service.connected())
        .await
        .expect("the service connects through nginx");
    assert!(
        eventually(Duration::from_secs(5), || hub
            .peer("behind-nginx")
            .is_connected())
        .await,
        "the hub registers it"
    );
    let v: String = hub
        .peer("behind-nginx")
        .get("/where")
        .receive()
        .await
        .unwrap();
    assert_eq!(v, "behind nginx");
}
