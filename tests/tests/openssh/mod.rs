//! Interoperability with stock OpenSSH (Debian's `ssh` and `sshd`): rrssh over a spawned `ssh`,
//! and services behind a stock `sshd`. Each test starts its own `sshd` on 127.0.0.1 with its
//! own config, host key, port and `authorized_keys`, and uses a throwaway `ssh_config` and
//! `known_hosts`.
//!
//! Without `ssh`/`sshd` installed these tests say so and pass, unless `RRSSH_REQUIRE_OPENSSH`
//! is set (CI sets it, after installing OpenSSH).

mod authorized_keys;
mod certificates;
mod local_forward;
mod over_ssh;
mod remote_forward;
mod stock_sshd;
mod terminal;

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use rrssh::client::{CallExt, Error};
use rrssh::keys::PrivateKey;
use rrssh::routing::{get, post, stream};
use rrssh::{Json, JsonStream, Path as P, Router};
use serde_json::{Value, json};

/// Whether OpenSSH is here; if not, and not required, the caller skips.
pub(crate) fn openssh_available() -> bool {
    let found = which("ssh").is_some() && sshd_path().is_some();
    if !found {
        assert!(
            std::env::var_os("RRSSH_REQUIRE_OPENSSH").is_none(),
            "OpenSSH is required (RRSSH_REQUIRE_OPENSSH is set) but ssh or sshd is missing"
        );
        crate::skipped(
            "ssh or sshd is not installed (apt-get install openssh-client openssh-server)",
        );
    }
    found
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

fn sshd_path() -> Option<PathBuf> {
    ["/usr/sbin/sshd", "/usr/bin/sshd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// The user this process runs as (the one sshd logs us in as).
pub(crate) fn current_user() -> String {
    std::process::Command::new("id")
        .arg("-un")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "root".into())
}

/// A temporary directory, removed when dropped.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rrssh-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes a private key (mode 0600) and its `.pub`; returns the private key's path.
pub(crate) fn write_key(dir: &TempDir, name: &str, key: &PrivateKey) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.path(name);
    rrssh::keys::write_key_pair(key, &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// A `known_hosts` line for a host key at 127.0.0.1:`port`.
pub(crate) fn known_hosts_line(port: u16, host: &PrivateKey) -> String {
    format!(
        "[127.0.0.1]:{port} {}\n",
        host.public_key().to_openssh().unwrap()
    )
}

/// A throwaway `ssh_config` with one host alias; returns its path.
pub(crate) fn ssh_config(
    dir: &TempDir,
    alias: &str,
    port: u16,
    user: &str,
    identity: &Path,
    known_hosts: &Path,
) -> PathBuf {
    let text = format!(
        "Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {}\n  \
         IdentitiesOnly yes\n  UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n  BatchMode yes\n  \
         LogLevel ERROR\n",
        identity.display(),
        known_hosts.display()
    );
    let path = dir.path(&format!("ssh_config_{alias}"));
    std::fs::write(&path, text).unwrap();
    path
}

/// A private `sshd` on 127.0.0.1, stopped when dropped.
pub(crate) struct Sshd {
    _child: tokio::process::Child,
    pub(crate) port: u16,
}

impl Sshd {
    /// Starts `sshd` with `authorized_keys` holding `client`'s key and `extra` config lines.
    pub(crate) async fn start(
        dir: &TempDir,
        host: &PrivateKey,
        client: &PrivateKey,
        extra: &str,
    ) -> Self {
        let line = format!("{}\n", client.public_key().to_openssh().unwrap());
        Self::start_with_keys(dir, host, &line, extra).await
    }

    /// Starts `sshd` reading `authorized_keys` (its whole text) and `extra` config lines.
    pub(crate) async fn start_with_keys(
        dir: &TempDir,
        host: &PrivateKey,
        authorized_keys: &str,
        extra: &str,
    ) -> Self {
        write_key(dir, "sshd_host", host);
        std::fs::write(dir.path("sshd_authorized_keys"), authorized_keys).unwrap();
        // sshd running as root wants its privilege-separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = free_port();
        let d = dir.0.display();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/sshd_host\n\
             AuthorizedKeysFile {d}/sshd_authorized_keys\nPidFile {d}/sshd.pid\nStrictModes no\n\
             UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nLogLevel ERROR\n{extra}\n"
        );
        std::fs::write(dir.path("sshd_config"), config).unwrap();
        let child = tokio::process::Command::new(sshd_path().unwrap())
            .args(["-D", "-e", "-f"])
            .arg(dir.path("sshd_config"))
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start sshd");
        for _ in 0..250 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self {
                    _child: child,
                    port,
                };
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("sshd did not listen within 5 s");
    }
}

/// An rrssh server (set up further by `configure`) that lets in one client key, with
/// `options` before it in its `authorized_keys` line, and an `ssh_config` in a temporary
/// directory through which `ssh api` reaches it as `ada` with that key, pinning its host key.
pub(crate) async fn rrssh_server_for_ssh(
    tag: &str,
    options: &str,
    configure: impl FnOnce(rrssh::Server) -> rrssh::Server,
) -> (rrssh::Hub, TempDir, PathBuf) {
    let host = rrssh::keys::generate_ed25519("rrssh-host");
    let client = rrssh::keys::generate_ed25519("ada@laptop");
    let line = format!("{options}{}", client.public_key().to_openssh().unwrap());
    let hub = configure(
        rrssh::Server::new().host_key(host.clone()).authorized_keys(
            rrssh::keys::AuthorizedKeys::parse(&line, "authorized_keys")
                .unwrap()
                .owned_by("ada"),
        ),
    )
    .bind("127.0.0.1:0")
    .await
    .unwrap();
    let dir = TempDir::new(tag);
    let id = write_key(&dir, "id_ed25519", &client);
    let kh = dir.path("known_hosts");
    std::fs::write(&kh, known_hosts_line(hub.local_addr().port(), &host)).unwrap();
    let config = ssh_config(&dir, "api", hub.local_addr().port(), "ada", &id, &kh);
    (hub, dir, config)
}

pub(crate) use rrssh_test_support::free_port;

/// A router with every verb and a STREAM, for the interop tests.
pub(crate) fn verbs() -> Router {
    Router::new()
        .route(
            "/items/{id}",
            get(|P(id): P<u64>| async move { Json(json!({"get": id})) })
                .put(|P(id): P<u64>, Json(v): Json<Value>| async move {
                    Json(json!({"put": id, "body": v}))
                })
                .patch(|P(id): P<u64>, Json(v): Json<Value>| async move {
                    Json(json!({"patch": id, "body": v}))
                })
                .delete(|P(id): P<u64>| async move { Json(json!({"delete": id})) }),
        )
        .route(
            "/items",
            post(|Json(v): Json<Value>| async move { Json(json!({"post": v})) }),
        )
        .route(
            "/count",
            stream(|| async { JsonStream::new(futures_util::stream::iter(0u32..5)) }),
        )
        .route(
            "/whoami",
            get(|peer: Option<rrssh::Peer>| async move {
                peer.map_or_else(
                    || "nobody".to_owned(),
                    |p| format!("{} {}", p.user(), p.fingerprint()),
                )
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
}

/// Calls every verb and the STREAM of [`verbs`] through `c`.
pub(crate) async fn check_verbs<C: rrssh::client::Call + Clone>(c: &C) {
    let v: Value = c.get("/items/7").receive().await.unwrap();
    assert_eq!(v, json!({"get": 7}));
    let v: Value = c
        .post("/items")
        .json(&json!({"n": 1}))
        .receive()
        .await
        .unwrap();
    assert_eq!(v, json!({"post": {"n": 1}}));
    let v: Value = c
        .put("/items/7")
        .json(&json!({"n": 2}))
        .receive()
        .await
        .unwrap();
    assert_eq!(v, json!({"put": 7, "body": {"n": 2}}));
    let v: Value = c
        .patch("/items/7")
        .json(&json!({"n": 3}))
        .receive()
        .await
        .unwrap();
    assert_eq!(v, json!({"patch": 7, "body": {"n": 3}}));
    let v: Value = c.delete("/items/7").receive().await.unwrap();
    assert_eq!(v, json!({"delete": 7}));
    let items: Vec<u32> = c
        .stream("/count")
        .items::<u32>()
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(items, vec![0, 1, 2, 3, 4]);
    let err = c.get("/nope").receive_text().await.unwrap_err();
    assert!(
        matches!(err, Error::Status { status, .. } if status == 404),
        "{err:?}"
    );
}

/// A TCP server on 127.0.0.1 answering every connection with `pong PORT` and closing.
pub(crate) async fn ponger() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut s, _)) = l.accept().await {
            let _ = s.write_all(format!("pong {port}\n").as_bytes()).await;
        }
    });
    port
}

/// Runs `ssh -F config [-W stdio_forward] alias args…` with nothing on its input; returns
/// whether it succeeded and what it printed.
pub(crate) async fn run_ssh(
    config: &std::path::Path,
    alias: &str,
    args: &[String],
    stdio_forward: Option<&str>,
) -> (bool, String) {
    use tokio::io::AsyncReadExt;
    let mut cmd = tokio::process::Command::new("ssh");
    cmd.arg("-F").arg(config);
    if let Some(target) = stdio_forward {
        cmd.arg("-W").arg(target);
    }
    cmd.arg(alias).args(args);
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        stdout.read_to_end(&mut out),
    );
    read.await.expect("ssh finishes").unwrap();
    let status = child.wait().await.unwrap();
    let text = String::from_utf8_lossy(&out)
        .replace('\r', "")
        .trim()
        .to_owned();
    (status.success(), text)
}

/// A real `sshd` and an rrssh server reading the same `authorized_keys` text (owned by the
/// user running the tests), with sshd's defaults: a terminal for every key its line does not
/// forbid one, forwarding anywhere. `ssh` runs the same command against each.
pub(crate) struct TwoServers {
    sshd: Sshd,
    rrssh: rrssh::Hub,
    known_hosts: PathBuf,
    user: String,
}

impl TwoServers {
    pub(crate) async fn start(dir: &TempDir, authorized_keys: &str) -> Self {
        Self::start_with_revocations(dir, authorized_keys, None).await
    }

    /// The same, both reading `revoked` as their revoked keys (sshd's `RevokedKeys`).
    pub(crate) async fn start_with_revocations(
        dir: &TempDir,
        authorized_keys: &str,
        revoked: Option<&Path>,
    ) -> Self {
        let host = rrssh::keys::generate_ed25519("host");
        let extra = revoked
            .map(|p| format!("RevokedKeys {}\n", p.display()))
            .unwrap_or_default();
        let sshd = Sshd::start_with_keys(dir, &host, authorized_keys, &extra).await;
        let user = current_user();
        let mut rrssh = rrssh::Server::new();
        if let Some(path) = revoked {
            rrssh = rrssh.revoked_keys(rrssh::keys::RevokedKeys::load(path).unwrap());
        }
        let rrssh = rrssh
            .host_key(host.clone())
            .authorized_keys(
                rrssh::keys::AuthorizedKeys::parse(authorized_keys, "authorized_keys")
                    .unwrap()
                    .owned_by(user.clone()),
            )
            .terminal(rrssh::terminal::Terminal::shell("/bin/sh").for_every_key())
            .permit_open(rrssh::tunnel::PermitOpen::any())
            .bind("127.0.0.1:0")
            .await
            .unwrap();
        let known_hosts = dir.path("known_hosts");
        std::fs::write(
            &known_hosts,
            known_hosts_line(sshd.port, &host)
                + &known_hosts_line(rrssh.local_addr().port(), &host),
        )
        .unwrap();
        Self {
            sshd,
            rrssh,
            known_hosts,
            user,
        }
    }

    /// `ssh [-W stdio_forward] … args` with the key `id`, against `sshd` then rrssh: what each
    /// run gave (success, output).
    pub(crate) async fn both(
        &self,
        dir: &TempDir,
        tag: &str,
        id: &Path,
        args: &[String],
        stdio_forward: Option<&str>,
    ) -> [(bool, String); 2] {
        let mut outcomes = Vec::new();
        for (name, port) in [
            ("sshd", self.sshd.port),
            ("rrssh", self.rrssh.local_addr().port()),
        ] {
            let alias = format!("{name}-{tag}");
            let config = ssh_config(dir, &alias, port, &self.user, id, &self.known_hosts);
            outcomes.push(run_ssh(&config, &alias, args, stdio_forward).await);
        }
        [outcomes.remove(0), outcomes.remove(0)]
    }
}
