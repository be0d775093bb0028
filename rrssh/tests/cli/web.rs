//! `rrssh serve --https`: a tunnel over `wss://` that survives the server's restart, and a
//! certificate reloaded on `SIGHUP`.

use super::serve::{key, serve};
use super::*;

fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        text(&out.stderr)
    );
}

/// A CA `{ca}.pem` and a certificate it signed for 127.0.0.1 (`cert.pem`, `key.pem`) in `dir`.
fn certificate(dir: &Path, ca: &str) {
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}-key.pem"));
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend([
        "-keyout",
        &ca_key,
        "-out",
        &ca_pem,
        "-days",
        "2",
        "-subj",
        "/CN=test CA",
    ]);
    openssl(dir, &args);
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend(["-keyout", "key.pem", "-out", "cert.csr", "-subj", "/CN=hub"]);
    openssl(dir, &args);
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "cert.csr",
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
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
        let mut a = vec![
            "shell".to_owned(),
            target.clone(),
            "echo over-wss".to_owned(),
        ];
        a.extend(login(ca));
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
