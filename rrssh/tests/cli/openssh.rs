//! The command line against a stock OpenSSH `sshd` started by the test: terminals and tunnels
//! with a key, a password, the ssh-agent, an ssh config alias and a jump host. Without
//! OpenSSH these tests say so and pass, unless `RRSSH_REQUIRE_OPENSSH` is set (CI sets it).

use super::*;

/// Whether `ssh`/`sshd` (and the agent tools) are here; if not, and not required, skip.
pub(crate) fn openssh_here(what: &str) -> bool {
    let found =
        Path::new("/usr/sbin/sshd").exists() && ["ssh-agent", "ssh-add"].iter().all(|t| on_path(t));
    if !found {
        assert!(
            std::env::var_os("RRSSH_REQUIRE_OPENSSH").is_none(),
            "OpenSSH is required (RRSSH_REQUIRE_OPENSSH is set) but sshd or ssh-agent is missing"
        );
        skip(&format!(
            "{what}: sshd or ssh-agent is not installed (apt-get install openssh-client openssh-server)"
        ));
    }
    found
}

fn on_path(name: &str) -> bool {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .any(|d| Path::new(d).join(name).exists())
}

pub(crate) use rrssh_test_support::skipped as skip;

fn whoami() -> String {
    std::process::Command::new("id")
        .arg("-un")
        .output()
        .map(|o| text(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "root".into())
}

/// A private sshd on 127.0.0.1 (killed when dropped), letting in `authorized` keys, with
/// `first` config lines (sshd takes the first value of a keyword).
struct Sshd {
    _child: tokio::process::Child,
    port: u16,
    /// A known_hosts line for it.
    known: String,
}

async fn sshd(dir: &Dir, authorized: &str, first: &str) -> Sshd {
    let host = generate_ed25519("sshd-host");
    let hk = dir.path("sshd_host");
    rrssh::keys::write_key_pair(&host, &hk).unwrap();
    std::fs::write(dir.path("sshd_ak"), authorized).unwrap();
    let _ = std::fs::create_dir_all("/run/sshd");
    let port = free_port();
    let d = dir.0.display();
    let config = format!(
        "{first}\nPort {port}\nListenAddress 127.0.0.1\nHostKey {d}/sshd_host\n\
         AuthorizedKeysFile {d}/sshd_ak\nPidFile {d}/sshd.pid\nStrictModes no\nUsePAM no\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
         PermitRootLogin prohibit-password\nAllowTcpForwarding yes\nLogLevel ERROR\n"
    );
    std::fs::write(dir.path("sshd_config"), config).unwrap();
    let child = tokio::process::Command::new("/usr/sbin/sshd")
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
            let known = format!(
                "[127.0.0.1]:{port} {}\n",
                host.public_key().to_openssh().unwrap()
            );
            return Sshd {
                _child: child,
                port,
                known,
            };
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("sshd did not listen within 5 s");
}

/// Runs the tool with a private HOME (no default keys) and no agent unless given.
async fn rrssh_env(args: &[&str], env: &[(&str, &str)], home: &Path) -> Output {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args)
        .env("HOME", home)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("RRSSH_PASSWORD")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("rrssh must finish")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_and_forward_against_a_stock_sshd_with_a_key_an_alias_and_the_agent() {
    if !openssh_here("rrssh shell/forward against sshd") {
        return;
    }
    let dir = Dir::new("stock-sshd");
    let key = generate_ed25519("ada@laptop");
    let id = dir.path("id");
    rrssh::keys::write_key_pair(&key, &id).unwrap();
    let line = format!("{}\n", key.public_key().to_openssh().unwrap());
    let sshd = sshd(&dir, &line, "").await;
    std::fs::write(dir.path("kh"), &sshd.known).unwrap();
    let user = whoami();
    let target = format!("ssh://{user}@127.0.0.1:{}", sshd.port);
    let kh = dir.path("kh");
    let login = [
        "-i",
        id.to_str().unwrap(),
        "--known-hosts",
        kh.to_str().unwrap(),
    ];

    // A terminal with a key: output, a pseudo-terminal, the exit status.
    // (-t: a terminal though the input is a pipe; the options before the command.)
    let mut args = vec!["shell", &target, "-t"];
    args.extend(login);
    args.push("echo sshd-$((6*7)); tty; exit 3");
    let out = rrssh_env(&args, &[], &dir.0).await;
    let stdout = text(&out.stdout);
    assert!(stdout.contains("sshd-42"), "{stdout} {}", text(&out.stderr));
    assert!(stdout.contains("/dev/pts/"), "{stdout}");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));

    // forward -L to a port only the sshd's side reaches (loopback here).
    let service = upper_service().await;
    let local = free_port();
    let spec = format!("{local}:127.0.0.1:{service}");
    let mut args = vec!["forward", "-L", &spec, &target];
    args.extend(login);
    let (mut child, first) = running(&args).await;
    assert!(
        first.starts_with(&format!("forwarding 127.0.0.1:{local}")),
        "{first}"
    );
    assert_eq!(exchange(local, "through sshd").await, "THROUGH SSHD");
    let _ = child.kill().await;

    // An ssh config alias: HostName, Port, User, IdentityFile, UserKnownHostsFile.
    let config = dir.path("ssh_config");
    std::fs::write(
        &config,
        format!(
            "Host box\n  HostName 127.0.0.1\n  Port {}\n  User {user}\n  IdentityFile {}\n  \
             UserKnownHostsFile {}\n",
            sshd.port,
            id.display(),
            dir.path("kh").display()
        ),
    )
    .unwrap();
    let out = rrssh_env(
        &[
            "shell",
            "ssh://box",
            "-F",
            config.to_str().unwrap(),
            "echo alias-ok",
        ],
        &[],
        &dir.0,
    )
    .await;
    assert!(
        text(&out.stdout).contains("alias-ok"),
        "{}",
        text(&out.stderr)
    );

    // The ssh-agent: no key file given, none in HOME; the agent holds the key.
    let sock = dir.path("agent.sock");
    let mut agent = tokio::process::Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let added = std::process::Command::new("ssh-add")
        .arg(&id)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", text(&added.stderr));
    let out = rrssh_env(
        &[
            "shell",
            &target,
            "--known-hosts",
            kh.to_str().unwrap(),
            "echo agent-ok",
        ],
        &[("SSH_AUTH_SOCK", sock.to_str().unwrap())],
        &dir.0,
    )
    .await;
    assert!(
        text(&out.stdout).contains("agent-ok"),
        "{}",
        text(&out.stderr)
    );
    // Without the agent or a key, it says how to log in, in one line.
    let out = rrssh_env(
        &[
            "shell",
            &target,
            "--known-hosts",
            kh.to_str().unwrap(),
            "true",
        ],
        &[],
        &dir.0,
    )
    .await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no way to log in"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let _ = agent.kill().await;
}

/// A throwaway account with a password, for sshd's password logins (needs root).
fn password_user() -> Option<(String, String)> {
    let name = "rrsshpw".to_owned();
    let exists = std::process::Command::new("id")
        .arg(&name)
        .output()
        .is_ok_and(|o| o.status.success());
    if !exists {
        let made = std::process::Command::new("useradd")
            .args(["-M", "-d", "/tmp", "-s", "/bin/sh", &name])
            .output()
            .ok()?;
        if !made.status.success() {
            return None;
        }
    }
    let password = format!("pw-{}-{}", std::process::id(), free_port());
    let mut chpasswd = std::process::Command::new("chpasswd")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    {
        use std::io::Write;
        chpasswd
            .stdin
            .take()?
            .write_all(format!("{name}:{password}\n").as_bytes())
            .ok()?;
    }
    chpasswd.wait().ok()?.success().then_some((name, password))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_logs_in_to_a_stock_sshd_with_a_password() {
    if !openssh_here("rrssh shell with a password") {
        return;
    }
    let Some((user, password)) = password_user() else {
        assert!(
            std::env::var_os("RRSSH_REQUIRE_OPENSSH").is_none(),
            "password logins need a test account (run as root: useradd, chpasswd)"
        );
        skip("password logins against sshd: not root (useradd, chpasswd)");
        return;
    };
    let dir = Dir::new("sshd-password");
    let sshd = sshd(
        &dir,
        "",
        "PasswordAuthentication yes\nKbdInteractiveAuthentication yes",
    )
    .await;
    std::fs::write(dir.path("kh"), &sshd.known).unwrap();
    let target = format!("ssh://{user}@127.0.0.1:{}", sshd.port);
    let kh = dir.path("kh");
    // From the environment.
    let out = rrssh_env(
        &[
            "shell",
            &target,
            "--known-hosts",
            kh.to_str().unwrap(),
            "echo pw-$(id -un)",
        ],
        &[("RRSSH_PASSWORD", &password)],
        &dir.0,
    )
    .await;
    assert!(
        text(&out.stdout).contains(&format!("pw-{user}")),
        "{} {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // From a file.
    let file = dir.path("pw");
    std::fs::write(&file, format!("{password}\n")).unwrap();
    let out = rrssh_env(
        &[
            "shell",
            &target,
            "--known-hosts",
            kh.to_str().unwrap(),
            "--password-file",
            file.to_str().unwrap(),
            "exit 6",
        ],
        &[],
        &dir.0,
    )
    .await;
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    // A wrong one: refused, saying what was tried, and never showing the password.
    let out = rrssh_env(
        &[
            "shell",
            &target,
            "--known-hosts",
            kh.to_str().unwrap(),
            "true",
        ],
        &[("RRSSH_PASSWORD", "wrong-password")],
        &dir.0,
    )
    .await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("refused user rrsshpw"), "{err}");
    assert!(err.contains("password"), "{err}");
    assert!(!err.contains("wrong-password"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_reach_an_rrssh_server_through_a_stock_sshd_jump_host() {
    if !openssh_here("rrssh -J through sshd") {
        return;
    }
    // The rrssh server, and an sshd that lets the same key in as a jump host.
    let s = setup("jump").await;
    let id = s.dir.path("id_ed25519");
    let key = load_private_key(&id, None).unwrap();
    let line = format!("{}\n", key.public_key().to_openssh().unwrap());
    let jump_dir = Dir::new("jump-sshd");
    let sshd = sshd(&jump_dir, &line, "").await;
    let kh = s.dir.path("known_hosts");
    let mut known = std::fs::read_to_string(&kh).unwrap();
    known.push_str(&sshd.known);
    std::fs::write(&kh, known).unwrap();
    let jump = format!("{}@127.0.0.1:{}", whoami(), sshd.port);
    let out = rrssh(
        &s.args(&["call", &s.target, "GET", "/users/9", "-J", &jump]),
        None,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, json!({"id": 9, "name": "ada"}));
    // A jump host that refuses the key: the error names it.
    let out = rrssh(
        &s.args(&[
            "call",
            &s.target,
            "GET",
            "/users/9",
            "-J",
            "nobody-here@127.0.0.1:1",
        ]),
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("127.0.0.1:1"),
        "{}",
        text(&out.stderr)
    );
}
