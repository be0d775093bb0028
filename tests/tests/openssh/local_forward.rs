//! OpenSSH's `ssh -L` and `ssh -R` against an rrssh server: rrssh's tunnels are plain SSH.

use std::time::Duration;

use rrssh::tunnel::PermitOpen;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{free_port, openssh_available, rrssh_server_for_ssh};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_dash_l_tunnels_through_an_rrssh_server() {
    if !openssh_available() {
        return;
    }
    let target_port = greeter().await;
    let (_hub, _dir, config) = rrssh_server_for_ssh("ssh-l", "", |s| {
        s.permit_open(PermitOpen::parse(&format!("127.0.0.1:{target_port}")).unwrap())
    })
    .await;

    let local = free_port();
    let mut ssh = tokio::process::Command::new("ssh")
        .arg("-F")
        .arg(&config)
        .args([
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-L",
            &format!("127.0.0.1:{local}:127.0.0.1:{target_port}"),
            "api",
        ])
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // ssh listens once it is authenticated.
    assert_eq!(greet(local, "openssh").await, "hello, openssh");

    ssh.kill().await.unwrap();
    let mut err = String::new();
    if let Some(mut e) = ssh.stderr.take() {
        let _ = e.read_to_string(&mut err).await;
    }
    assert!(!err.contains("administratively prohibited"), "{err}");
}

/// A TCP server that answers each connection with "hello, " and what it read.
async fn greeter() -> u16 {
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = target.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = target.accept().await {
            tokio::spawn(async move {
                let mut name = String::new();
                let _ = s.read_to_string(&mut name).await;
                let _ = s.write_all(format!("hello, {name}").as_bytes()).await;
            });
        }
    });
    port
}

/// Says `name` through the forwarded port and returns the answer. A connection that `ssh`
/// accepts before its session is ready may be reset; the exchange is tried again then (three
/// tries in all).
async fn greet(port: u16, name: &str) -> String {
    let mut last_error = None;
    for _ in 0..3 {
        let mut conn = None;
        for _ in 0..200 {
            if let Ok(c) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                conn = Some(c);
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let mut conn = conn.expect("the forwarded port listens");
        let mut reply = String::new();
        let exchange = async {
            conn.write_all(name.as_bytes()).await?;
            conn.shutdown().await?;
            conn.read_to_string(&mut reply).await
        };
        match tokio::time::timeout(Duration::from_secs(10), exchange).await {
            Ok(Ok(_)) => return reply,
            Ok(Err(e)) => {
                println!("greeting through the tunnel failed, trying again: {e}");
                last_error = Some(e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(_) => panic!("no answer through the tunnel in 10 s"),
        }
    }
    panic!("greeting through the tunnel failed three times: {last_error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_dash_r_listens_on_an_rrssh_server() {
    if !openssh_available() {
        return;
    }
    let target_port = greeter().await;
    let (_hub, _dir, config) = rrssh_server_for_ssh("ssh-r", "", |s| {
        s.permit_listen(PermitOpen::parse("127.0.0.1:*").unwrap())
    })
    .await;
    let remote = free_port();
    let mut ssh = tokio::process::Command::new("ssh")
        .arg("-F")
        .arg(&config)
        .args([
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-R",
            &format!("{remote}:127.0.0.1:{target_port}"),
            "api",
        ])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // OpenSSH asks for `localhost`, which the rrssh server binds as 127.0.0.1.
    assert_eq!(greet(remote, "ssh -R").await, "hello, ssh -R");
    ssh.kill().await.unwrap();
}
