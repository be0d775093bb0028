//! A terminal session driven by a russh client: pty size, a window change reaching the program,
//! and the exit status coming back.

use std::time::Duration;

use rrssh::terminal::Terminal;
use russh::ChannelMsg;

use super::limits::{AnyHost, russh_login};
use super::{Keys, authorized_with, server_builder};

/// A server that serves `/bin/sh` terminals to `keys.client`, granted one by its scope.
pub(crate) async fn terminal_server(keys: &Keys) -> rrssh::Hub {
    server_builder(keys)
        .authorized_keys(authorized_with(keys, r#"rrssh-scopes="terminal" "#))
        .terminal(Terminal::shell("/bin/sh"))
        .bind("127.0.0.1:0")
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_change_reaches_the_program_and_its_exit_status_comes_back() {
    let keys = Keys::new();
    let hub = terminal_server(&keys).await;
    let ssh = russh_login(hub.local_addr(), "ada", &keys.client).await;
    let mut ch = ssh.channel_open_session().await.unwrap();
    ch.request_pty(true, "xterm-256color", 100, 30, 0, 0, &[])
        .await
        .unwrap();
    // The program prints its size, waits for a line (sent after the window change), prints
    // the new size, and exits with 4.
    ch.exec(true, "stty size; echo $TERM; read x; stty size; exit 4")
        .await
        .unwrap();

    let mut out = String::new();
    let mut status = None;
    let mut resized = false;
    let result = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(msg) = ch.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    out.push_str(&String::from_utf8_lossy(&data));
                    if !resized && out.contains("xterm-256color") {
                        resized = true;
                        ch.window_change(120, 40, 0, 0).await.unwrap();
                        // Let the size change land before the program reads its size again.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        ch.data(&b"go\n"[..]).await.unwrap();
                    }
                }
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                ChannelMsg::Close => break,
                _ => {}
            }
        }
    })
    .await;
    assert!(result.is_ok(), "the session must end: {out:?}");
    println!("{out}");
    assert!(out.contains("30 100"), "the requested size: {out:?}");
    assert!(
        out.contains("40 120"),
        "the size after the window change: {out:?}"
    );
    assert_eq!(status, Some(4));
}

/// Reads output until it contains `needle` (or the session ends); returns all of it.
pub(crate) async fn read_until(out: &mut rrssh::terminal::TerminalOutput, needle: &str) -> String {
    let mut seen = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while !seen.contains(needle) {
            match out.next().await {
                Some(b) => seen.push_str(&String::from_utf8_lossy(&b)),
                None => break,
            }
        }
    })
    .await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_terminal_types_resizes_and_gets_the_exit_status() {
    use rrssh::terminal::TerminalOptions;
    let keys = Keys::new();
    let hub = terminal_server(&keys).await;
    let c = super::client(&keys, &hub).connect().await.unwrap();
    let mut t = c
        .terminal(TerminalOptions::new().size(90, 20))
        .await
        .unwrap();
    t.input.write("stty size\n").await.unwrap();
    let seen = read_until(&mut t.output, "20 90").await;
    assert!(seen.contains("20 90"), "{seen:?}");
    t.input.resize(100, 30).await.unwrap();
    t.input.write("stty size\n").await.unwrap();
    let seen = read_until(&mut t.output, "30 100").await;
    assert!(seen.contains("30 100"), "{seen:?}");
    t.input.write("exit 6\n").await.unwrap();
    let _ = read_until(&mut t.output, "\u{0}never").await;
    assert_eq!(t.output.exit_status(), Some(6));
    // The calls on the same connection are unaffected.
    use rrssh::client::CallExt as _;
    assert!(c.get("/.well-known/rrssh/routes").send().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminals_are_refused_without_the_server_option_or_the_grant() {
    use rrssh::client::CallExt as _;
    use rrssh::terminal::{TerminalError, TerminalOptions};
    let keys = Keys::new();
    // No `Server::terminal`: refused.
    let hub = server_builder(&keys).bind("127.0.0.1:0").await.unwrap();
    let c = super::client(&keys, &hub).connect().await.unwrap();
    let err = c.terminal(TerminalOptions::new()).await.unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    // A key without the grant, and a `no-pty` key without the scope: refused and told why,
    // while their calls work.
    for (options, why) in [
        ("", "it is not granted one"),
        ("no-pty ", "its authorized_keys line forbids one"),
    ] {
        let hub = server_builder(&keys)
            .authorized_keys(authorized_with(&keys, options))
            .terminal(Terminal::shell("/bin/sh"))
            .bind("127.0.0.1:0")
            .await
            .unwrap();
        let c = super::client(&keys, &hub).connect().await.unwrap();
        let err = c
            .terminal(TerminalOptions::new().command("echo no"))
            .await
            .unwrap_err();
        match &err {
            TerminalError::Refused(msg) => {
                assert!(msg.starts_with("no terminal for this key: "), "{msg}");
                assert!(msg.contains(why), "{options:?}: {msg}");
            }
            other => panic!("{options:?}: expected a refusal that says why, got {other:?}"),
        }
        assert!(c.get("/.well-known/rrssh/routes").send().await.is_ok());
    }
    // A `no-pty` key with the scope: its pseudo-terminal is refused, as sshd refuses it.
    let hub = server_builder(&keys)
        .authorized_keys(authorized_with(&keys, r#"no-pty,rrssh-scopes="terminal" "#))
        .terminal(Terminal::shell("/bin/sh"))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let c = super::client(&keys, &hub).connect().await.unwrap();
    let err = c
        .terminal(TerminalOptions::new().command("echo no"))
        .await
        .unwrap_err();
    assert!(matches!(err, TerminalError::PtyRefused), "{err:?}");
}

/// What the server sent on a session channel until it closed it.
#[derive(Debug, Default)]
struct Ended {
    out: String,
    err: String,
    status: Option<u32>,
    failures: usize,
    closed: bool,
}

/// Opens a session channel and runs `command` (a shell if `None`), with a pty request first
/// if `pty`; reads until the server closes the channel (10 s at most).
async fn run(
    ssh: &russh::client::Handle<AnyHost>,
    pty: bool,
    command: Option<&str>,
) -> Result<Ended, russh::Error> {
    let mut ch = ssh.channel_open_session().await?;
    if pty {
        ch.request_pty(true, "xterm", 80, 24, 0, 0, &[]).await?;
    }
    match command {
        Some(c) => ch.exec(true, c).await?,
        None => {
            ch.request_shell(true).await?;
            ch.data(&b"echo ran-$((6*7)); exit 0\n"[..]).await?;
        }
    }
    let mut e = Ended::default();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(msg) = ch.wait().await {
            match msg {
                ChannelMsg::Data { data } => e.out.push_str(&String::from_utf8_lossy(&data)),
                ChannelMsg::ExtendedData { data, .. } => {
                    e.err.push_str(&String::from_utf8_lossy(&data));
                }
                ChannelMsg::ExitStatus { exit_status } => e.status = Some(exit_status),
                ChannelMsg::Failure => e.failures += 1,
                ChannelMsg::Close => {
                    e.closed = true;
                    break;
                }
                _ => {}
            }
        }
    })
    .await;
    Ok(e)
}

/// Before: every authenticated key got a shell once terminals were on, API-only and service
/// keys included; only `no-pty`/`restrict` refused one. Now a key must be granted one (`pty`,
/// or the scope `terminal`), the last of `restrict`/`no-pty`/`pty` decides as under sshd, and a
/// refused key is told why. A key granted commands whose line forbids a pseudo-terminal has its
/// `pty-req` refused (as sshd refuses it) and runs its commands on pipes. The one session slot
/// of each connection is free again once a session ended, refused or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminals_only_for_keys_granted_one() {
    // (name, options, why a program is refused, whether the pty-req is refused)
    let cases: [(&str, &str, Option<&str>, bool); 9] = [
        ("no grant", "", Some("it is not granted one"), false),
        ("pty", "pty", None, false),
        (
            "the scope",
            r#"rrssh-scopes="billing:read,terminal""#,
            None,
            false,
        ),
        ("restrict,pty", "restrict,pty", None, false),
        ("restrict", "restrict", Some("forbids one"), false),
        ("pty,restrict", "pty,restrict", Some("forbids one"), false),
        (
            "no-pty with the scope",
            r#"no-pty,rrssh-scopes="terminal""#,
            None,
            true,
        ),
        (
            "restrict with the scope",
            r#"restrict,rrssh-scopes="terminal""#,
            None,
            true,
        ),
        (
            "an API-only service key",
            r#"rrssh-scopes="*",rrssh-services="billing""#,
            Some("it is not granted one"),
            false,
        ),
    ];
    let host = rrssh::keys::generate_ed25519("host");
    let ks: Vec<_> = cases
        .iter()
        .map(|c| rrssh::keys::generate_ed25519(c.0))
        .collect();
    let text: String = cases
        .iter()
        .zip(&ks)
        .map(|((_, o, _, _), k)| {
            let sep = if o.is_empty() { "" } else { " " };
            format!("{o}{sep}{}\n", k.public_key().to_openssh().unwrap())
        })
        .collect();
    let hub = rrssh::Server::new()
        .host_key(host)
        .authorized_keys(
            rrssh::keys::AuthorizedKeys::parse(&text, "authorized_keys")
                .unwrap()
                .owned_by("ada"),
        )
        .auth_rejection_time(Duration::from_millis(10))
        .terminal(Terminal::shell("/bin/sh"))
        .max_sessions(1)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    for ((name, _, refused, pty_refused), key) in cases.iter().zip(&ks) {
        let ssh = russh_login(hub.local_addr(), "ada", key).await;
        // With a pty request, then a shell without one, on the connection's one slot.
        let first = run(&ssh, true, Some("echo ran-$((6*7))")).await.unwrap();
        let second = run(&ssh, false, None)
            .await
            .unwrap_or_else(|e| panic!("{name}: the slot must be free again: {e}"));
        for (e, what, asked_pty) in [(&first, "with a pty", true), (&second, "a shell", false)] {
            assert!(
                e.closed,
                "{name}, {what}: the server ends the session: {e:?}"
            );
            match refused {
                None => {
                    assert!(e.out.contains("ran-42"), "{name}, {what}: {e:?}");
                    let failures = usize::from(asked_pty && *pty_refused);
                    assert_eq!(
                        (e.status, e.failures),
                        (Some(0), failures),
                        "{name}, {what}: {e:?}"
                    );
                }
                Some(why) => {
                    assert!(!e.out.contains("ran-42"), "{name}, {what}: it ran: {e:?}");
                    assert!(
                        e.err.contains("rrssh: no terminal for this key: ") && e.err.contains(why),
                        "{name}, {what}: told why: {e:?}"
                    );
                    assert_eq!(e.err.matches("rrssh:").count(), 1, "told once: {e:?}");
                    // As for a login whose shell refuses it: the requests succeed, the
                    // session says why and ends with status 1.
                    assert_eq!(
                        (e.status, e.failures),
                        (Some(1), 0),
                        "{name}, {what}: {e:?}"
                    );
                }
            }
        }
    }
}

/// `Terminal::for_every_key`: sshd's behaviour. Every key runs commands; `no-pty` refuses the
/// pseudo-terminal (the command then runs on pipes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn for_every_key_serves_every_key_a_terminal_unless_forbidden() {
    let keys = Keys::new();
    for (options, pty_allowed) in [("", true), ("no-pty ", false)] {
        let hub = server_builder(&keys)
            .authorized_keys(authorized_with(&keys, options))
            .terminal(Terminal::shell("/bin/sh").for_every_key())
            .bind("127.0.0.1:0")
            .await
            .unwrap();
        let ssh = russh_login(hub.local_addr(), "ada", &keys.client).await;
        // `tty` says whether standard input is a terminal.
        let e = run(&ssh, true, Some("echo ran-$((6*7)); tty"))
            .await
            .unwrap();
        assert!(e.out.contains("ran-42"), "{options:?}: {e:?}");
        assert_eq!(
            e.out.contains("/dev/pts/"),
            pty_allowed,
            "{options:?}: {e:?}"
        );
        assert_eq!(e.failures, usize::from(!pty_allowed), "{options:?}: {e:?}");
    }
}

/// Without a pty request a command runs on pipes, as under sshd: its output and errors arrive
/// apart and byte for byte (no CR added, binary intact), the client's end of input ends its
/// standard input, and its exit status comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_without_a_pty_runs_on_pipes() {
    let keys = Keys::new();
    let hub = server_builder(&keys)
        .authorized_keys(authorized_with(&keys, "pty "))
        .terminal(Terminal::shell("/bin/sh"))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let ssh = russh_login(hub.local_addr(), "ada", &keys.client).await;
    let e = run(
        &ssh,
        false,
        Some("printf 'a\\nb\\n'; echo oops >&2; tty; exit 3"),
    )
    .await
    .unwrap();
    assert_eq!(e.out, "a\nb\nnot a tty\n", "{e:?}");
    assert_eq!(e.err, "oops\n", "{e:?}");
    assert_eq!(e.status, Some(3), "{e:?}");

    // Input up to its end, back unchanged: every byte value, then EOF ends `cat`.
    let mut ch = ssh.channel_open_session().await.unwrap();
    ch.exec(true, "cat; echo done >&2").await.unwrap();
    let sent: Vec<u8> = (0..=255u8).cycle().take(256 * 1024).collect();
    ch.data(&sent[..]).await.unwrap();
    ch.eof().await.unwrap();
    let (mut out, mut err, mut status) = (Vec::new(), Vec::new(), None);
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(msg) = ch.wait().await {
            match msg {
                ChannelMsg::Data { data } => out.extend_from_slice(&data),
                ChannelMsg::ExtendedData { data, .. } => err.extend_from_slice(&data),
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                ChannelMsg::Close => break,
                _ => {}
            }
        }
    })
    .await
    .expect("the command ends at the end of its input");
    assert!(out == sent, "{} bytes back of {}", out.len(), sent.len());
    assert_eq!(err, b"done\n");
    assert_eq!(status, Some(0));
}

/// Waits up to 5 s for process `pid` to be gone.
async fn gone(pid: u32) -> bool {
    for _ in 0..100 {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return true;
        }
        // A zombie is gone too: it runs nothing.
        if std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.split(' ').nth(2) == Some("Z"))
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Opens a terminal running `sleep`, reads its pid, sends EOF; returns the session and pid.
async fn sleeper(
    hub: &rrssh::Hub,
    keys: &Keys,
) -> (
    russh::client::Handle<AnyHost>,
    russh::Channel<russh::client::Msg>,
    u32,
) {
    let ssh = russh_login(hub.local_addr(), "ada", &keys.client).await;
    let mut ch = ssh.channel_open_session().await.unwrap();
    ch.exec(true, "echo pid=$$; exec sleep 300").await.unwrap();
    let mut out = String::new();
    let pid = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ch.wait().await {
                Some(ChannelMsg::Data { data }) => {
                    out.push_str(&String::from_utf8_lossy(&data));
                    if let Some(p) = out
                        .split("pid=")
                        .nth(1)
                        .and_then(|r| r.split_whitespace().next())
                        .and_then(|p| p.parse::<u32>().ok())
                        && out.contains('\n')
                    {
                        return p;
                    }
                }
                Some(_) => {}
                None => panic!("the session ended: {out:?}"),
            }
        }
    })
    .await
    .expect("the program prints its pid");
    // End of input: the program keeps running, as under sshd.
    ch.eof().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the program must survive an end of input"
    );
    (ssh, ch, pid)
}

/// Before: after the client sent EOF, the server stopped reading the channel, so a later close
/// or a lost connection was never noticed and the program ran on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminals_hang_up_when_closed_or_lost_after_an_end_of_input() {
    let keys = Keys::new();
    let hub = terminal_server(&keys).await;

    // Closed after EOF.
    let (_ssh, ch, pid) = sleeper(&hub, &keys).await;
    ch.close().await.unwrap();
    assert!(gone(pid).await, "the program outlived its closed channel");

    // Connection lost after EOF.
    let (ssh, ch, pid) = sleeper(&hub, &keys).await;
    drop(ch);
    drop(ssh);
    assert!(gone(pid).await, "the program outlived its lost connection");
}

/// A client that reads none of a program's output and then goes: the server, blocked on
/// sending output, still sees it go and hangs up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminals_hang_up_when_a_client_that_stopped_reading_goes() {
    let keys = Keys::new();
    let hub = terminal_server(&keys).await;
    let client = rrssh::Client::builder(hub.local_addr().to_string())
        .user("ada")
        .identity(keys.client.clone())
        .host_keys(rrssh::keys::HostKeyPolicy::Pinned(
            keys.host.public_key().clone(),
        ))
        .connect()
        .await
        .unwrap();
    let pidfile = std::env::temp_dir().join(format!("rrssh-yes-{}", std::process::id()));
    let _ = std::fs::remove_file(&pidfile);
    let session = client
        .terminal(rrssh::terminal::TerminalOptions::new().command(format!(
            "echo $$ > {}; exec yes flooding-output",
            pidfile.display()
        )))
        .await
        .unwrap();
    // Never read: output backs up until the server cannot send.
    let pid = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(p) = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
            {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(session);
    client.close().await;
    assert!(
        gone(pid).await,
        "the program outlived a client that stopped reading"
    );
    let _ = std::fs::remove_file(&pidfile);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_over_is_closed_for_writing_and_idle_sessions_are_hung_up() {
    use rrssh::terminal::{TerminalError, TerminalOptions};
    let keys = Keys::new();
    // The server hangs up sessions idle for 300 ms.
    let hub = server_builder(&keys)
        .authorized_keys(authorized_with(&keys, "pty "))
        .terminal(Terminal::shell("/bin/sh").idle_timeout(Duration::from_millis(300)))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let c = super::client(&keys, &hub).connect().await.unwrap();

    // A program that exits: the session is over, and writing to it is an error.
    let mut t = c
        .terminal(TerminalOptions::new().command("exit 2"))
        .await
        .unwrap();
    assert!(t.input.is_open());
    let _ = read_until(&mut t.output, "\u{0}never").await;
    assert_eq!(t.output.exit_status(), Some(2));
    assert!(!t.input.is_open() && !t.output.is_open());
    assert_eq!(t.input.write("late\n").await, Err(TerminalError::Closed));
    assert_eq!(t.input.resize(10, 10).await, Err(TerminalError::Closed));

    // A program that stays silent: the server hangs up after 300 ms and says why.
    let started = std::time::Instant::now();
    let mut t = c
        .terminal(TerminalOptions::new().command("sleep 30"))
        .await
        .unwrap();
    let seen = read_until(&mut t.output, "\u{0}never").await;
    assert!(
        seen.contains("idle for 0 s; hanging up") || seen.contains("idle"),
        "{seen:?}"
    );
    assert_eq!(t.output.exit_status(), Some(129));
    assert!(started.elapsed() < Duration::from_secs(5));

    // The client side's own idle timeout (the server's is longer here).
    let hub = terminal_server(&keys).await;
    let c = super::client(&keys, &hub).connect().await.unwrap();
    let mut t = c
        .terminal(
            TerminalOptions::new()
                .command("sleep 30")
                .idle_timeout(Duration::from_millis(200)),
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(t.output.next().await, None);
    assert!(t.output.timed_out());
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(t.input.write("x").await, Err(TerminalError::Closed));
}
