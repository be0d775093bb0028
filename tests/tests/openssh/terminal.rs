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
    let s = setup("terminal", "pty ").await;
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

/// Before: `ssh -t` gave a shell to every key once terminals were on. Now only to keys granted
/// one; the others are told why on standard error, and `ssh` fails. A key granted commands
/// whose line forbids a pseudo-terminal fails `ssh -tt` as against sshd, and runs `ssh -T`'s
/// command on pipes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_keys_granted_a_terminal_get_one() {
    if !openssh_available() {
        return;
    }
    for (i, (options, why)) in [
        ("", Some("it is not granted one")),
        ("no-pty ", Some("forbids one")),
        ("restrict ", Some("forbids one")),
        (
            r#"rrssh-scopes="*",rrssh-services="billing" "#,
            Some("it is not granted one"),
        ),
        ("restrict,pty ", None),
        (r#"rrssh-scopes="terminal" "#, None),
    ]
    .into_iter()
    .enumerate()
    {
        let s = setup(&format!("terminal-grant-{i}"), options).await;
        for args in [
            &["-tt", "api", "echo ran-$((6*7))"][..],
            // No pty request: the command runs on pipes, and needs the grant too.
            &["-T", "api", "echo ran-$((6*7))"][..],
        ] {
            let out = ssh(&s, args, "").await;
            let text = String::from_utf8_lossy(&out.stdout);
            let err = String::from_utf8_lossy(&out.stderr);
            match why {
                None => {
                    assert!(
                        text.contains("ran-42"),
                        "{options:?} {args:?}: {text} {err}"
                    );
                    assert_eq!(out.status.code(), Some(0), "{options:?} {args:?}: {err}");
                }
                Some(why) => {
                    assert!(
                        !text.contains("ran-42"),
                        "{options:?} {args:?}: ran: {text}"
                    );
                    assert!(
                        err.contains("rrssh: no terminal for this key: ") && err.contains(why),
                        "{options:?} {args:?}: told why: {err}"
                    );
                    assert_ne!(out.status.code(), Some(0), "{options:?} {args:?}");
                    println!("{options:?} {args:?} refused: {}", err.trim());
                }
            }
        }
    }
    let s = setup(
        "terminal-grant-no-pty",
        r#"no-pty,rrssh-scopes="terminal" "#,
    )
    .await;
    let out = ssh(&s, &["-tt", "api", "echo ran-$((6*7))"], "").await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PTY allocation request failed"), "{err}");
    assert_ne!(out.status.code(), Some(0), "{err}");
    let out = ssh(&s, &["-T", "api", "echo ran-$((6*7)); tty"], "").await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, "ran-42\nnot a tty\n");
    assert_eq!(out.status.code(), Some(1), "tty's status comes back");
}
