//! A service behind a stock `sshd` (`tcpip-forward`, like `ssh -R`), reached with the
//! plain-TCP client on the forwarded port and with `ssh -W` from anywhere.

use rrssh::client::CallExt;
use rrssh::keys::{HostKeyPolicy, PrivateKey, generate_ed25519};
use rrssh::transport::ConnectError;
use rrssh::{Client, Router};

use super::{
    Sshd, TempDir, check_verbs, current_user, free_port, known_hosts_line, openssh_available,
    ssh_config, verbs, write_key,
};

fn service(
    sshd: &Sshd,
    host: &rrssh::keys::PrivateKey,
    key: &rrssh::keys::PrivateKey,
    router: Router,
) -> rrssh::transport::ClientBuilder {
    Client::builder(format!("127.0.0.1:{}", sshd.port))
        .user(current_user())
        .identity(key.clone())
        .host_keys(HostKeyPolicy::Pinned(host.public_key().clone()))
        .serve(router)
}

/// A private sshd with `extra` lines in its config, that lets in one fresh service key; returns
/// its directory, host key, the service key and the sshd.
async fn sshd_for_a_service(tag: &str, extra: &str) -> (TempDir, PrivateKey, PrivateKey, Sshd) {
    let dir = TempDir::new(tag);
    let (host, key) = (generate_ed25519("sshd-host"), generate_ed25519("service"));
    let sshd = Sshd::start(&dir, &host, &key, extra).await;
    (dir, host, key, sshd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_verb_and_a_stream_through_a_stock_sshd() {
    if !openssh_available() {
        return;
    }
    let port = free_port();
    let (dir, host, key, sshd) = sshd_for_a_service(
        "remote-forward",
        // `remote` would do for callers on the sshd host; `ssh -W` callers need local
        // forwarding too, limited to the service's port.
        &format!(
            "AllowTcpForwarding yes\nGatewayPorts no\nPermitListen 127.0.0.1:{port}\nPermitOpen 127.0.0.1:{port}"
        ),
    )
    .await;
    let fwd = service(&sshd, &host, &key, verbs())
        .serve_remote_forward("127.0.0.1", u32::from(port))
        .await
        .unwrap();
    assert_eq!(fwd.port(), port);
    println!(
        "sshd on {} listens on 127.0.0.1:{port} for the service",
        sshd.port
    );

    // On the sshd host: plain TCP to the forwarded port.
    let local = Client::tcp(("127.0.0.1", port)).await.unwrap();
    check_verbs(&local).await;
    assert_eq!(local.get("/whoami").receive_text().await.unwrap(), "nobody");

    // From anywhere: ssh -W through the same sshd.
    let id = write_key(&dir, "caller", &key);
    let kh = dir.path("known_hosts");
    std::fs::write(&kh, known_hosts_line(sshd.port, &host)).unwrap();
    let cfg = ssh_config(&dir, "gateway", sshd.port, &current_user(), &id, &kh);
    let cmd = [
        "ssh",
        "-F",
        cfg.to_str().unwrap(),
        "-W",
        &format!("127.0.0.1:{port}"),
        "gateway",
    ];
    println!("carrier: {}", cmd.join(" "));
    let remote = Client::over_command(cmd).await.unwrap();
    check_verbs(&remote).await;
    remote.close().await;
    fwd.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_the_sshd_does_not_permit_is_refused_clearly() {
    if !openssh_available() {
        return;
    }
    let allowed = free_port();
    let (_dir, host, key, sshd) = sshd_for_a_service(
        "remote-forward-refused",
        &format!("AllowTcpForwarding remote\nPermitListen 127.0.0.1:{allowed}"),
    )
    .await;
    let other = free_port();
    let err = service(&sshd, &host, &key, verbs())
        .serve_remote_forward("127.0.0.1", u32::from(other))
        .await
        .unwrap_err();
    println!("{err}");
    assert!(matches!(err, ConnectError::ForwardRefused(_)), "{err:?}");
    assert!(err.to_string().contains("PermitListen"));
}

/// A persistent forward comes back after its SSH connection is reset: the sshd session that
/// held the port ends, and the service asks again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_forward_comes_back_after_the_connection_is_reset() {
    if !openssh_available() {
        return;
    }
    let port = free_port();
    let (_dir, host, key, sshd) = sshd_for_a_service(
        "remote-forward-persistent",
        &format!("AllowTcpForwarding remote\nGatewayPorts no\nPermitListen 127.0.0.1:{port}"),
    )
    .await;
    let proxy = crate::ssh::proxy::Proxy::start(([127, 0, 0, 1], sshd.port).into()).await;
    let fwd = Client::builder(proxy.addr().to_string())
        .user(current_user())
        .identity(key.clone())
        .host_keys(HostKeyPolicy::Pinned(host.public_key().clone()))
        .serve(verbs())
        .backoff(
            rrssh::transport::Backoff::default()
                .initial(std::time::Duration::from_millis(50))
                .max(std::time::Duration::from_millis(200)),
        )
        .serve_remote_forward_persistent("127.0.0.1", u32::from(port));
    let serving = || async {
        match Client::tcp(("127.0.0.1", port)).await {
            Ok(c) => c.get("/items/1").receive_text().await.is_ok(),
            Err(_) => false,
        }
    };
    let wait = |what: &'static str| async move {
        for _ in 0..200 {
            if serving().await {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("{what}: the forwarded port never served");
    };
    wait("first").await;
    assert_eq!(fwd.port(), Some(port));

    proxy.reset_all();
    let reset = std::time::Instant::now();
    wait("after the reset").await;
    println!(
        "served again through sshd {} ms after the connection was reset",
        reset.elapsed().as_millis()
    );
    assert_eq!(fwd.port(), Some(port));
}
