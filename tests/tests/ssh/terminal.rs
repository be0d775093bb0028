//! A terminal session driven by a russh client: pty size, a window change reaching the program,
//! and the exit status coming back.

use std::sync::Arc;
use std::time::Duration;

use rrssh::terminal::Terminal;
use russh::ChannelMsg;

use super::limits::AnyHost;
use super::{Keys, server_builder};

/// A server that serves `/bin/sh` terminals to `keys.client`.
pub(crate) async fn terminal_server(keys: &Keys) -> rrssh::Hub {
    server_builder(keys)
        .terminal(Terminal::shell("/bin/sh"))
        .bind("127.0.0.1:0")
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_change_reaches_the_program_and_its_exit_status_comes_back() {
    let keys = Keys::new();
    let hub = terminal_server(&keys).await;
    let mut ssh = russh::client::connect(
        Arc::new(russh::client::Config::default()),
        hub.local_addr(),
        AnyHost,
    )
    .await
    .unwrap();
    let auth = ssh
        .authenticate_publickey(
            "ada",
            russh::keys::PrivateKeyWithHashAlg::new(Arc::new(keys.client.clone()), None),
        )
        .await
        .unwrap();
    assert!(auth.success());
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
async fn read_until(out: &mut rrssh::terminal::TerminalOutput, needle: &str) -> String {
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
async fn terminals_are_refused_without_the_server_option_or_for_no_pty_keys() {
    use rrssh::terminal::TerminalOptions;
    let keys = Keys::new();
    // No `Server::terminal`: refused.
    let hub = server_builder(&keys).bind("127.0.0.1:0").await.unwrap();
    let c = super::client(&keys, &hub).connect().await.unwrap();
    let err = c.terminal(TerminalOptions::new()).await.unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    // A `no-pty` key: refused, while its calls work.
    let line = format!("no-pty {}", keys.client.public_key().to_openssh().unwrap());
    let hub = server_builder(&keys)
        .authorized_keys(
            rrssh::keys::AuthorizedKeys::parse(&line, "authorized_keys")
                .unwrap()
                .owned_by("ada"),
        )
        .terminal(Terminal::shell("/bin/sh"))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let c = super::client(&keys, &hub).connect().await.unwrap();
    let err = c
        .terminal(TerminalOptions::new().command("echo no"))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "the server refused the pseudo-terminal");
    use rrssh::client::CallExt as _;
    assert!(c.get("/.well-known/rrssh/routes").send().await.is_ok());
}
