//! Certificates from an ACME authority: Debian's Pebble (a test ACME server) validates the web
//! listener's TLS-ALPN-01 answers on its own port, with names resolved by
//! `pebble-challtestsrv`'s DNS; the issued certificate serves `wss://`, is cached, and is served
//! again from the cache with the authority gone. Without Pebble this test says so and passes,
//! unless `RRSSH_REQUIRE_PEBBLE` is set (CI sets it, after installing it).

use std::path::PathBuf;
use std::time::Duration;

use rrssh::tls::{Acme, AcmeState, TrustedRoots};
use rrssh::websocket::WebListener;

use super::{certificates, client_at, hello, hello_through};
use crate::openssh::{TempDir, free_port};
use crate::ssh::{Keys, server_builder};
use rrssh_test_support::{Child, spawn_until_listening};

fn pebble_binaries() -> Option<(PathBuf, PathBuf)> {
    let (pebble, dns) = (
        PathBuf::from("/usr/bin/pebble"),
        PathBuf::from("/usr/bin/pebble-challtestsrv"),
    );
    if pebble.exists() && dns.exists() {
        return Some((pebble, dns));
    }
    assert!(
        std::env::var_os("RRSSH_REQUIRE_PEBBLE").is_none(),
        "Pebble is required (RRSSH_REQUIRE_PEBBLE is set)"
    );
    crate::skipped("Pebble (apt-get install pebble)");
    None
}

/// Pebble validating challenges on `tls_port` of the addresses its DNS gives (127.0.0.1 for
/// every name), its API on a certificate `certificates` made in `dir`; returns its directory URL,
/// its management port, and the two processes.
async fn pebble(dir: &TempDir, tls_port: u16) -> Option<(String, u16, [Child; 2])> {
    let (pebble, challtestsrv) = pebble_binaries()?;
    let (api, management, dns, dns_management) =
        (free_port(), free_port(), free_port(), free_port());
    let mut cmd = std::process::Command::new(challtestsrv);
    cmd.args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
        .args(["-dns01", &format!("127.0.0.1:{dns}")])
        .args(["-management", &format!("127.0.0.1:{dns_management}")])
        .args(["-http01", "", "-https01", "", "-tlsalpn01", ""]);
    let dns_server = spawn_until_listening(cmd, dns_management).await;
    let config = serde_json::json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{api}"),
        "managementListenAddress": format!("127.0.0.1:{management}"),
        "certificate": dir.path("cert.pem"),
        "privateKey": dir.path("key.pem"),
        "httpPort": free_port(),
        "tlsPort": tls_port,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false,
    }});
    std::fs::write(dir.path("pebble.json"), config.to_string()).unwrap();
    let mut cmd = std::process::Command::new(pebble);
    cmd.arg("-config")
        .arg(dir.path("pebble.json"))
        .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
        // No random waits before validating, no nonces refused at random.
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0");
    let ca = spawn_until_listening(cmd, management).await;
    Some((
        format!("https://127.0.0.1:{api}/dir"),
        management,
        [dns_server, ca],
    ))
}

/// Pebble's issuing root (it makes a new one at every start), through its management API.
async fn issuer_root(dir: &TempDir, management: u16) -> TrustedRoots {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--fail", "--cacert"])
        .arg(dir.path("ca.pem"))
        .arg(format!("https://127.0.0.1:{management}/roots/0"))
        .output()
        .await
        .expect("run curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(dir.path("pebble-root.pem"), &out.stdout).unwrap();
    TrustedRoots::from_pem_file(dir.path("pebble-root.pem")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acme_certificate_is_issued_on_the_listeners_port_cached_and_served_again() {
    let dir = TempDir::new("acme");
    certificates(&dir.0, "pebble");
    let web_port = free_port();
    let Some((directory, management, processes)) = pebble(&dir, web_port).await else {
        return;
    };
    let keys = Keys::new();
    let hub = server_builder(&keys)
        .router(hello())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let cache = dir.path("acme-cache");
    let acme = || {
        Acme::new(&directory, ["localhost"], &cache)
            .contact("ops@example.com")
            .directory_ca(dir.path("ca.pem"))
    };
    let (certificate, task) = acme().start().unwrap();
    assert!(certificate.leaf().is_empty(), "nothing cached yet");
    WebListener::bind(("127.0.0.1", web_port))
        .await
        .unwrap()
        .tls(certificate.clone())
        .serve(&hub)
        .unwrap();
    let not_after = tokio::time::timeout(Duration::from_secs(60), task.issued())
        .await
        .expect("issued within 60 s")
        .expect("issued");
    assert!(not_after > std::time::SystemTime::now() + Duration::from_secs(24 * 3600));
    assert!(!certificate.leaf().is_empty());
    for file in ["account.json", "cert.pem", "key.pem", "names"] {
        assert!(cache.join(file).exists(), "{file} cached");
    }
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(cache.join("key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the key is the owner's only");

    // A client trusting Pebble's root logs in over wss:// with the issued certificate.
    let roots = issuer_root(&dir, management).await;
    let url = format!("wss://localhost:{web_port}");
    hello_through(
        client_at(&keys, &url).tls_roots(roots.clone()),
        "wss:// with the ACME certificate",
    )
    .await;

    // The authority goes away; a restart serves the cached certificate at once.
    drop(task);
    drop(processes);
    let (again, task) = acme().start().unwrap();
    assert_eq!(again.leaf(), certificate.leaf(), "the cached certificate");
    let cached = tokio::time::timeout(Duration::from_secs(5), task.issued())
        .await
        .expect("no authority needed")
        .unwrap();
    assert_eq!(cached, not_after);
    let port = WebListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .tls(again)
        .serve(&hub)
        .unwrap()
        .port();
    hello_through(
        client_at(&keys, &format!("wss://localhost:{port}")).tls_roots(roots),
        "wss:// with the cached certificate",
    )
    .await;

    // Other names than the cached ones: a new certificate is needed, and with no authority
    // to ask, the failure says so.
    let (other, task) = Acme::new(&directory, ["other.localhost"], &cache)
        .directory_ca(dir.path("ca.pem"))
        .start()
        .unwrap();
    assert!(other.leaf().is_empty(), "not served for other names");
    let err = tokio::time::timeout(Duration::from_secs(30), task.issued())
        .await
        .expect("the failure is told")
        .unwrap_err();
    assert!(err.to_string().starts_with("ACME"), "{err}");
    assert!(matches!(task.state(), AcmeState::Failed { .. }));
}
