//! Hubs join a `nats-server` that requires authentication, as any NATS client does: a user
//! and password (in the URL or set), a token, an NKey; and a hub with the wrong credentials
//! joins nothing.

use std::time::Duration;

use rrssh::client::CallExt;
use rrssh::cluster::Cluster;

use super::{Keys, Nats, hub_in, keys, nats_available, service};
use crate::ssh::eventually;

/// Connects `svc-x` to `home`; whether it answers through `other` within 10 s. The service
/// stays connected while the returned client lives.
async fn reaches(
    home: &rrssh::Hub,
    other: &rrssh::Hub,
    keys: &Keys,
) -> (bool, rrssh::ReconnectingClient) {
    let svc = service(keys, "svc-x", home.local_addr(), &[]);
    if !eventually(Duration::from_secs(10), || {
        other.peer("svc-x").is_connected()
    })
    .await
    {
        return (false, svc);
    }
    let who = other.peer("svc-x").get("/who").receive_text().await.ok();
    (who.as_deref() == Some("svc-x"), svc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubs_join_a_nats_that_requires_a_user_and_password() {
    if !nats_available() {
        return;
    }
    let args = ["--user", "hub", "--pass", "s3cr@t"]
        .map(String::from)
        .to_vec();
    let nats = Nats::start_with(args).await;
    let keys = keys();
    let port = nats.port;
    // In the URL (percent-encoded), and set.
    let a = hub_in(
        &keys,
        Cluster::new(format!("nats://hub:s3cr%40t@127.0.0.1:{port}")).hub_id("a"),
    )
    .await;
    let b = hub_in(
        &keys,
        Cluster::new(nats.url())
            .user_and_password("hub", "s3cr@t")
            .hub_id("b"),
    )
    .await;
    let (answered, _svc) = reaches(&b, &a, &keys).await;
    assert!(answered, "a service on b answers through a");
    // The wrong password: that hub is not in the cluster.
    let c = hub_in(
        &keys,
        Cluster::new(nats.url())
            .user_and_password("hub", "wrong")
            .hub_id("c"),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !c.peer("svc-x").is_connected(),
        "a hub NATS refused sees no other hub's services"
    );
    assert!(a.peer("svc-x").is_connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubs_join_a_nats_that_requires_a_token() {
    if !nats_available() {
        return;
    }
    let nats = Nats::start_with(["--auth", "T0KEN-42"].map(String::from).to_vec()).await;
    let keys = keys();
    let a = hub_in(
        &keys,
        Cluster::new(format!("nats://T0KEN-42@127.0.0.1:{}", nats.port)).hub_id("a"),
    )
    .await;
    let b = hub_in(
        &keys,
        Cluster::new(nats.url()).token("T0KEN-42").hub_id("b"),
    )
    .await;
    let (answered, _svc) = reaches(&a, &b, &keys).await;
    assert!(answered, "a service on a answers through b");
    let none = hub_in(&keys, Cluster::new(nats.url()).hub_id("none")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!none.peer("svc-x").is_connected(), "no token, no cluster");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubs_join_a_nats_that_requires_an_nkey() {
    if !nats_available() {
        return;
    }
    let user = nkeys::KeyPair::new_user();
    let config = std::env::temp_dir().join(format!("rrssh-nats-nkey-{}.conf", std::process::id()));
    std::fs::write(
        &config,
        format!(
            "authorization {{ users = [ {{ nkey: \"{}\" }} ] }}\n",
            user.public_key()
        ),
    )
    .unwrap();
    let nats = Nats::start_with(vec!["-c".into(), config.display().to_string()]).await;
    let keys = keys();
    let seed = user.seed().unwrap();
    let a = hub_in(
        &keys,
        Cluster::new(nats.url()).nkey(seed.clone()).hub_id("a"),
    )
    .await;
    let b = hub_in(&keys, Cluster::new(nats.url()).nkey(seed).hub_id("b")).await;
    let (answered, _svc) = reaches(&a, &b, &keys).await;
    assert!(answered, "a service on a answers through b");
    let other = nkeys::KeyPair::new_user().seed().unwrap();
    let stranger = hub_in(&keys, Cluster::new(nats.url()).nkey(other).hub_id("s")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !stranger.peer("svc-x").is_connected(),
        "an unknown NKey joins nothing"
    );
    let _ = std::fs::remove_file(config);
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, in `dir`.
fn certificates(dir: &std::path::Path) {
    let ca = rrssh_test_support::Pki::new(dir, "ca").unwrap();
    ca.issue(
        "server.pem",
        "server-key.pem",
        "server",
        "subjectAltName=IP:127.0.0.1",
    )
    .unwrap();
    ca.issue(
        "client.pem",
        "client-key.pem",
        "client",
        "extendedKeyUsage=clientAuth",
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubs_join_a_nats_that_requires_tls_and_a_client_certificate() {
    if !nats_available() {
        return;
    }
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("RRSSH_REQUIRE_NATS").is_none(),
            "openssl is required for the NATS TLS test (RRSSH_REQUIRE_NATS is set) but missing"
        );
        crate::skipped("the cluster TLS test: openssl is not installed (apt-get install openssl)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("rrssh-nats-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    certificates(&dir);
    let p = |f: &str| dir.join(f).display().to_string();
    let config = format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", verify: true }}\n",
        p("server.pem"),
        p("server-key.pem"),
        p("ca.pem")
    );
    std::fs::write(dir.join("nats.conf"), config).unwrap();
    let nats = Nats::start_with(vec!["-c".into(), p("nats.conf")]).await;
    let keys = keys();
    let url = format!("tls://127.0.0.1:{}", nats.port);
    let tls = |id: &str| {
        Cluster::new(url.clone())
            .tls_root_certificate(dir.join("ca.pem"))
            .tls_client_certificate(dir.join("client.pem"), dir.join("client-key.pem"))
            .hub_id(id)
    };
    let a = hub_in(&keys, tls("a")).await;
    let b = hub_in(&keys, tls("b")).await;
    let (answered, _svc) = reaches(&a, &b, &keys).await;
    assert!(answered, "a service on a answers through b, over TLS");
    // Without a client certificate, or without TLS at all, a hub joins nothing.
    let no_cert = hub_in(
        &keys,
        Cluster::new(url.clone())
            .tls_root_certificate(dir.join("ca.pem"))
            .hub_id("c"),
    )
    .await;
    let plain = hub_in(&keys, Cluster::new(nats.url()).hub_id("d")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !no_cert.peer("svc-x").is_connected(),
        "no client certificate, no cluster"
    );
    assert!(!plain.peer("svc-x").is_connected(), "no TLS, no cluster");
    let _ = std::fs::remove_dir_all(&dir);
}
