//! `rrssh serve --https`: a tunnel over `wss://` that survives the server's restart, a
//! certificate reloaded on `SIGHUP`, and the web terminal on the same port.

use super::serve::{key, serve};
use super::*;

/// A CA `{ca}.pem` and a certificate it signed for 127.0.0.1 (`cert.pem`, `key.pem`) in `dir`.
fn certificate(dir: &Path, ca: &str) {
    rrssh_test_support::Pki::new(dir, ca)
        .and_then(|ca| ca.issue("cert.pem", "key.pem", "hub", "subjectAltName=IP:127.0.0.1"))
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_over_wss_survives_a_restart_and_sighup_reloads_the_certificate() {
    let dir = Dir::new("https");
    certificate(&dir.0, "ca1");
    let (id, line) = key(&dir, "id", "pty ");
    let service = super::upper_service().await;
    let https = format!("127.0.0.1:{}", free_port());
    let args = [
        "--https",
        https.as_str(),
        "--tls-cert",
        dir.path("cert.pem").to_str().unwrap(),
        "--tls-key",
        dir.path("key.pem").to_str().unwrap(),
        "--terminal",
        "--permit-open",
        &format!("127.0.0.1:{service}"),
    ]
    .map(str::to_owned);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (server, _listen, kh) = serve(&dir, &line, &args).await;
    // The server's key, under the name of its web port.
    let host = load_private_key(dir.path("host"), None).unwrap();
    let (h, p) = https.split_once(':').unwrap();
    let web_entry = format!("[{h}]:{p} {}\n", host.public_key().to_openssh().unwrap());
    let know_web_port = || {
        let known = std::fs::read_to_string(&kh).unwrap();
        std::fs::write(&kh, known + &web_entry).unwrap();
    };
    know_web_port();
    let target = format!("wss://ada@{https}");
    let login = |ca: &str| {
        vec![
            "-i".to_owned(),
            id.display().to_string(),
            "--known-hosts".to_owned(),
            kh.display().to_string(),
            "--tls-ca".to_owned(),
            dir.path(ca).display().to_string(),
        ]
    };

    let local = free_port();
    let mut fwd_args = vec![
        "forward".to_owned(),
        "-L".to_owned(),
        format!("{local}:127.0.0.1:{service}"),
        target.clone(),
    ];
    fwd_args.extend(login("ca1.pem"));
    let (mut fwd, first) = running(&fwd_args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert!(first.starts_with("forwarding"), "{first}");
    assert_eq!(exchange(local, "over wss").await, "OVER WSS");

    // The server restarts on the same ports: the tunnel comes back over wss://.
    drop(server);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (server, _, _) = serve(&dir, &line, &args).await;
    know_web_port();
    let mut back = String::new();
    for _ in 0..100 {
        back = tokio::time::timeout(Duration::from_secs(2), exchange_quietly(local, "again"))
            .await
            .unwrap_or_default();
        if back == "AGAIN" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(back, "AGAIN", "the tunnel is back after the restart");
    let _ = fwd.kill().await;

    // A new certificate from another CA, loaded on SIGHUP: new connections get it.
    certificate(&dir.0, "ca2");
    let pid = server.id().unwrap().to_string();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(hup.success());
    let shell = |ca: &str| {
        let mut a = vec!["shell".to_owned(), target.clone()];
        a.extend(login(ca));
        a.push("echo over-wss".to_owned());
        a
    };
    let mut out = None;
    for _ in 0..50 {
        let args = shell("ca2.pem");
        let o = rrssh(&args.iter().map(String::as_str).collect::<Vec<_>>(), None).await;
        if o.status.success() {
            out = Some(o);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = out.expect("the reloaded certificate is served");
    assert!(
        text(&out.stdout).contains("over-wss"),
        "{}",
        text(&out.stderr)
    );
    // The old CA does not vouch for it: a TLS error, said as such.
    let args = shell("ca1.pem");
    let out = rrssh(&args.iter().map(String::as_str).collect::<Vec<_>>(), None).await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("TLS"), "{}", text(&out.stderr));
    drop(server);
}

/// Like `exchange`, but an empty answer when nothing listens or the tunnel is down.
async fn exchange_quietly(port: u16, word: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut c) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return String::new();
    };
    if c.write_all(word.as_bytes()).await.is_err() || c.shutdown().await.is_err() {
        return String::new();
    }
    let mut back = String::new();
    let _ = c.read_to_string(&mut back).await;
    back
}

/// A TLS connection to 127.0.0.1:`port`, checked against the CA in `ca`.
async fn tls_to(port: u16, ca: &Path) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .expect("TLS to the --https port")
}

/// `GET path` over HTTPS: the status and the `location` header.
async fn https_get(port: u16, ca: &Path, path: &str) -> (String, Option<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tls_to(port, ca).await;
    c.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut back = Vec::new();
    let _ = c.read_to_end(&mut back).await;
    let back = text(&back);
    let location = back
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .map(str::to_owned);
    (back[9..12].to_owned(), location)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_terminal_on_the_https_port_runs_the_servers_shell() {
    use futures_util::SinkExt as _;
    use tokio::io::AsyncBufReadExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let dir = Dir::new("web-terminal");
    certificate(&dir.0, "ca");
    // No key of the operator's is allowed a terminal: the web terminal's own key is.
    let (_id, line) = key(&dir, "id", "no-pty ");
    std::fs::write(dir.path("authorized_keys"), line).unwrap();
    let port = free_port();
    let mut child = tokio::process::Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--create-host-key", "--host-key"])
        .arg(dir.path("host"))
        .arg("--authorized-keys")
        .arg(dir.path("authorized_keys"))
        .args(["--https", &format!("127.0.0.1:{port}"), "--tls-cert"])
        .arg(dir.path("cert.pem"))
        .arg("--tls-key")
        .arg(dir.path("key.pem"))
        .args(["--terminal", "/bin/sh", "--web-terminal"])
        .env("USER", "ada")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if let Some(url) = message(&l).strip_prefix("web terminal on ") {
                return url.to_owned();
            }
        }
        panic!("the server ended without a web terminal");
    })
    .await
    .expect("the server prints the web terminal's address");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let token = url.split_once("?token=").unwrap().1.to_owned();
    assert_eq!(
        url,
        format!("https://127.0.0.1:{port}/terminal/?token={token}")
    );

    let ca = dir.path("ca.pem");
    let (status, _) = https_get(port, &ca, &format!("/terminal/?token={token}")).await;
    assert_eq!(status, "200");
    let (status, _) = https_get(port, &ca, "/terminal/?token=guess").await;
    assert_eq!(status, "401");
    let (status, location) = https_get(port, &ca, &format!("/terminal?token={token}")).await;
    assert_eq!(status, "308");
    assert_eq!(location, Some(format!("/terminal/?token={token}")));

    let (mut ws, _) = tokio_tungstenite::client_async(
        format!("wss://127.0.0.1:{port}/terminal/socket?token={token}&cols=80&rows=24"),
        tls_to(port, &ca).await,
    )
    .await
    .expect("the terminal's WebSocket");
    ws.send(Message::Binary("echo web-$((6*7)); exit 5\n".into()))
        .await
        .unwrap();
    let (out, exit) = super::terminal_output(&mut ws).await;
    assert!(out.contains("web-42"), "{out:?}");
    assert_eq!(exit, Some(json!({"type": "exit", "status": 5})));
    let _ = child.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_behind_a_proxy_on_wss_is_called_through_the_hub_by_the_cli_and_by_curl() {
    use tokio::io::AsyncBufReadExt as _;
    let dir = Dir::new("wss-proxy");
    let (_proxy, proxy_port) = match rrssh_test_support::tinyproxy(&dir.0).await {
        Ok(running) => running,
        Err(what) => {
            return rrssh_test_support::missing(
                "RRSSH_REQUIRE_PROXIES",
                &format!("{what} (apt-get install tinyproxy)"),
            );
        }
    };
    certificate(&dir.0, "ca");
    let (id, service) = super::hub_keys(&dir);
    let token = "3b9e2c7d1f0a48e6a5c4d3b2e1f0a9c8";
    std::fs::write(dir.path("tokens"), format!("web {token} call:svc\n")).unwrap();
    let https = free_port();
    let mut hub = tokio::process::Command::new(BIN)
        .args(["hub", "--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--create-host-key", "--host-key"])
        .arg(dir.path("hub_host"))
        .arg("--authorized-keys")
        .arg(dir.path("authorized_keys"))
        .args(["--https", &format!("127.0.0.1:{https}"), "--tls-cert"])
        .arg(dir.path("cert.pem"))
        .arg("--tls-key")
        .arg(dir.path("key.pem"))
        .arg("--gateway-tokens")
        .arg(dir.path("tokens"))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(hub.stdout.take().unwrap()).lines();
    let mut next_line = async move || {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("the hub says what it does")
            .unwrap()
            .expect("the hub runs");
        message(&line)
    };
    let mut line = String::new();
    while !line.contains("for wss://") {
        line = next_line().await;
    }
    assert!(line.contains("and the gateway on https://"), "{line}");
    let host = load_private_key(dir.path("hub_host"), None).unwrap();

    // The service dials wss:// through the proxy, with the hub's CA.
    let via =
        rrssh::proxy::Proxy::parse(&format!("http://ada:secret@127.0.0.1:{proxy_port}")).unwrap();
    let svc = rrssh::Client::builder(format!("wss://127.0.0.1:{https}"))
        .user("svc")
        .identity(service)
        .host_keys(rrssh::keys::HostKeyPolicy::Pinned(
            host.public_key().clone(),
        ))
        .tls_roots(rrssh::tls::TrustedRoots::from_pem_file(dir.path("ca.pem")).unwrap())
        .proxy(via)
        .serve(super::app())
        .service_name("svc")
        .connect()
        .await
        .expect("the service connects over wss:// through the proxy");
    let event = next_line().await;
    assert!(event.starts_with("connected    svc svc SHA256:"), "{event}");

    // The CLI calls it through the hub, over wss:// too.
    std::fs::write(
        dir.path("known_hosts"),
        format!(
            "[127.0.0.1]:{https} {}\n",
            host.public_key().to_openssh().unwrap()
        ),
    )
    .unwrap();
    let target = format!("hub+wss://127.0.0.1:{https}/svc");
    let ca = dir.path("ca.pem").display().to_string();
    let (id, kh) = (
        id.display().to_string(),
        dir.path("known_hosts").display().to_string(),
    );
    let out = rrssh(
        &[
            "call",
            &target,
            "GET",
            "/users/9",
            "-i",
            &id,
            "--known-hosts",
            &kh,
            "--tls-ca",
            &ca,
        ],
        None,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        json!({"id": 9, "name": "ada"})
    );

    // curl calls it through the gateway on the same port.
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        return rrssh_test_support::missing("RRSSH_REQUIRE_CURL", "curl (apt-get install curl)");
    }
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--fail-with-body", "--cacert", &ca])
        .args(["-H", &format!("authorization: Bearer {token}")])
        .arg(format!("https://127.0.0.1:{https}/peers/svc/users/9"))
        .output()
        .await
        .expect("run curl");
    assert!(out.status.success(), "curl: {}", text(&out.stderr));
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        json!({"id": 9, "name": "ada"})
    );
    svc.close().await;
    let _ = hub.kill().await;
}
