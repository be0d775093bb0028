//! Terminal sessions on an rrssh server, driven by OpenSSH's `ssh -tt`.

use std::process::Stdio;
use std::time::Duration;

use rrssh::terminal::Terminal;
use tokio::io::AsyncWriteExt;

use super::{TempDir, openssh_available, rrssh_server_for_ssh};

struct Setup {
    _hub: rrssh::Hub,
    _dir: TempDir,
    config: std::path::PathBuf,
}

async fn setup(tag: &str, options: &str) -> Setup {
    let (hub, dir, config) = rrssh_server_for_ssh(tag, options, |s| {
        s.terminal(Terminal::shell("/bin/sh").env("GREETING", "hello"))
    })
    .await;
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
