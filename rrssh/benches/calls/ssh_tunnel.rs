//! The `ssh -R` + axum baseline behind a private `sshd`, and rrssh over a spawned `ssh`.

#![allow(clippy::unwrap_used)]

use crate::*;

// ---------------------------------------------------------------- ssh -R + axum baseline

/// An axum JSON server behind a stock OpenSSH reverse tunnel: a private `sshd` on 127.0.0.1
/// with its own config and keys, and `ssh -N -R` forwarding a port on it to axum.
pub(crate) struct SshTunnel {
    pub(crate) _sshd: tokio::process::Child,
    pub(crate) _ssh: tokio::process::Child,
    pub(crate) dir: std::path::PathBuf,
    /// The forwarded port on the sshd side: HTTP clients connect here.
    pub(crate) port: u16,
}

impl Drop for SshTunnel {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) async fn axum_server() -> u16 {
    let app = axum::Router::new()
        .route(
            "/hello",
            axum::routing::get(|| async { axum::Json(serde_json::json!({"msg": "Hello World!"})) }),
        )
        .route(
            "/echo",
            axum::routing::post(|axum::Json(v): axum::Json<Value>| async move { axum::Json(v) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// A client of the rig's forward server over a spawned `ssh` with a throwaway config; the
/// directory holding the config and key is removed when the guard drops.
pub(crate) async fn over_ssh_client(rig: &Rig) -> Result<(rrssh::Client, TempDirGuard), String> {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("rrssh-bench-overssh-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let guard = TempDirGuard(dir.clone());
    rrssh::keys::write_key_pair(&rig.key, dir.join("id")).map_err(|e| e.to_string())?;
    let _ = std::fs::set_permissions(dir.join("id"), std::fs::Permissions::from_mode(0o600));
    let port = rig.forward.local_addr().port();
    std::fs::write(
        dir.join("known_hosts"),
        format!(
            "[127.0.0.1]:{port} {}\n",
            rig.host
                .public_key()
                .to_openssh()
                .map_err(|e| e.to_string())?
        ),
    )
    .map_err(|e| e.to_string())?;
    let d = dir.display();
    std::fs::write(
        dir.join("ssh_config"),
        format!(
            "Host bench\n  HostName 127.0.0.1\n  Port {port}\n  User ada\n  IdentityFile {d}/id\n  \
             IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking yes\n  \
             Ciphers aes256-gcm@openssh.com\n  LogLevel ERROR\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    let config = dir.join("ssh_config");
    let cmd = rrssh::transport::ssh_command("bench", &["-F", config.to_str().unwrap_or_default()]);
    let client = rrssh::Client::over_command(cmd)
        .await
        .map_err(|e| e.to_string())?;
    Ok((client, guard))
}

pub(crate) struct TempDirGuard(pub(crate) std::path::PathBuf);

impl Drop for TempDirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts the tunnel, or says why it cannot.
pub(crate) async fn ssh_tunnel(
    host: &PrivateKey,
    key: &PrivateKey,
    axum_port: u16,
) -> Result<SshTunnel, String> {
    use std::os::unix::fs::PermissionsExt;
    let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .ok_or("sshd is not installed (apt-get install openssh-server)")?;
    let dir = std::env::temp_dir().join(format!("rrssh-bench-sshd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let d = dir.display();
    rrssh::keys::write_key_pair(host, dir.join("ssh_host")).map_err(|e| e.to_string())?;
    rrssh::keys::write_key_pair(key, dir.join("client")).map_err(|e| e.to_string())?;
    for f in ["ssh_host", "client"] {
        let _ = std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o600));
    }
    std::fs::copy(dir.join("client.pub"), dir.join("authorized_keys"))
        .map_err(|e| e.to_string())?;
    // sshd running as root wants its privilege-separation directory.
    let _ = std::fs::create_dir_all("/run/sshd");
    let sshd_port = free_port();
    let config = format!(
        "Port {sshd_port}\nListenAddress 127.0.0.1\nHostKey {d}/ssh_host\nAuthorizedKeysFile {d}/authorized_keys\n\
         PidFile {d}/sshd.pid\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nAllowTcpForwarding yes\n\
         PermitRootLogin prohibit-password\nCiphers aes256-gcm@openssh.com\nLogLevel ERROR\n"
    );
    std::fs::write(dir.join("sshd_config"), config).map_err(|e| e.to_string())?;
    let sshd = tokio::process::Command::new(sshd)
        .args(["-D", "-e", "-f"])
        .arg(dir.join("sshd_config"))
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("sshd: {e}"))?;
    let user = std::process::Command::new("id")
        .arg("-un")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "root".into());
    let port = free_port();
    rrssh_test_support::listening(sshd_port).await;
    let ssh = tokio::process::Command::new("ssh")
        .args(["-N", "-T", "-F", "/dev/null", "-i"])
        .arg(dir.join("client"))
        .args(["-p", &sshd_port.to_string()])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "ExitOnForwardFailure=yes",
            "-o",
            "LogLevel=ERROR",
        ])
        .args(["-o", "Ciphers=aes256-gcm@openssh.com"])
        .args(["-R", &format!("{port}:127.0.0.1:{axum_port}")])
        .arg(format!("{user}@127.0.0.1"))
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("ssh: {e}"))?;
    let tunnel = SshTunnel {
        _sshd: sshd,
        _ssh: ssh,
        dir,
        port,
    };
    for _ in 0..250 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(tunnel);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err("the ssh -R tunnel did not come up within 5 s".into())
}

/// HTTP/1.1 keep-alive load: `conc` connections, one request in flight on each.
pub(crate) async fn http_load(
    port: u16,
    prefix: &'static str,
    conc: usize,
    dur: Duration,
    body: Option<Value>,
) -> Figure {
    use http_body_util::BodyExt;
    let start = Instant::now();
    let deadline = start + dur;
    let tasks: Vec<_> = (0..conc)
        .map(|_| {
            let body = body
                .as_ref()
                .map(|b| bytes::Bytes::from(serde_json::to_vec(b).unwrap()));
            tokio::spawn(async move {
                let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap();
                tcp.set_nodelay(true).unwrap();
                let (mut send, conn) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                        .await
                        .unwrap();
                tokio::spawn(conn);
                let mut lat = Vec::with_capacity(4096);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let req = match &body {
                        None => http::Request::get(format!("{prefix}/hello"))
                            .header("host", "127.0.0.1")
                            .body(http_body_util::Full::new(bytes::Bytes::new())),
                        Some(b) => http::Request::post(format!("{prefix}/echo"))
                            .header("host", "127.0.0.1")
                            .header("content-type", "application/json")
                            .body(http_body_util::Full::new(b.clone())),
                    }
                    .unwrap();
                    send.ready().await.unwrap();
                    let resp = send.send_request(req).await.unwrap();
                    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
                    let _: Value = serde_json::from_slice(&bytes).unwrap();
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let all = join_all(tasks).await.into_iter().flatten().collect();
    summarize(all, start.elapsed())
}
