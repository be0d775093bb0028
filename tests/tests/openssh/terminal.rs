//! Terminal sessions on an rrssh server, driven by OpenSSH's `ssh -tt`.

use std::process::Stdio;
use std::time::Duration;

use rrssh::Server;
use rrssh::keys::{AuthorizedKeys, generate_ed25519};
use rrssh::terminal::Terminal;
use tokio::io::AsyncWriteExt;

use super::{TempDir, known_hosts_line, openssh_available, ssh_config, write_key};

struct Setup {
    _hub: rrssh::Hub,
    _dir: TempDir,
    config: std::path::PathBuf,
}

async fn setup(tag: &str, options: &str) -> Setup {
    let host = generate_ed25519("rrssh-host");
    let client = generate_ed25519("ada@laptop");
    let line = format!("{options}{}", client.public_key().to_openssh().unwrap());
    let hub = Server::new()
        .host_key(host.clone())
        .authorized_keys(AuthorizedKeys::parse(&line, "authorized_keys").unwrap())
        .terminal(Terminal::shell("/bin/sh").env("GREETING", "hello"))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let dir = TempDir::new(tag);
    let id = write_key(&dir, "id_ed25519", &client);
    let kh = dir.path("known_hosts");
    std::fs::write(&kh, known_hosts_line(hub.local_addr().port(), &host)).unwrap();
    let config = ssh_config(&dir, "api", hub.local_addr().port(), "ada", &id, &kh);
    Setup {
        _hub: hub,
        _dir: dir,
        config,
    }
}

async fn ssh(s: &Setup, args: &[&str], input: &str) -> std::process::Output {
    let mut child = tokio::process::Command::new("ssh")
        .arg("-F")
        .arg(&s.config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    // Keep stdin open: a terminal session ends when its program exits, not at end of input.
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("ssh must finish")
        .unwrap();
    drop(stdin);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_runs_a_command_and_a_shell_in_a_terminal() {
    if !openssh_available() {
        return;
    }
    let s = setup("terminal", "").await;
    // A command: its output, its terminal, and its exit status.
    let out = ssh(
        &s,
        &[
            "-tt",
            "api",
            "echo \"$GREETING $RRSSH_USER $((6*7))\"; tty; exit 3",
        ],
        "",
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(text.contains("hello ada 42"), "{text}");
    assert!(text.contains("/dev/pts/"), "a pseudo-terminal: {text}");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An interactive shell reading what is typed.
    let out = ssh(&s, &["-tt", "api"], "echo typed-$((2+3))\nexit 7\n").await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("typed-5"), "{text}");
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_pty_keys_get_no_terminal() {
    if !openssh_available() {
        return;
    }
    let s = setup("terminal-no-pty", "no-pty ").await;
    let out = ssh(&s, &["-tt", "api", "echo should-not-run"], "").await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("should-not-run"), "{text}");
    assert_ne!(out.status.code(), Some(0));
    println!("refused: {}", String::from_utf8_lossy(&out.stderr).trim());
}
