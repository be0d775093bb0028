//! A terminal session driven by a russh client: pty size, a window change reaching the program,
//! and the exit status coming back.

use std::sync::Arc;
use std::time::Duration;

use rrssh::terminal::Terminal;
use russh::ChannelMsg;

use super::limits::AnyHost;
use super::{Keys, server_builder};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_change_reaches_the_program_and_its_exit_status_comes_back() {
    let keys = Keys::new();
    let hub = server_builder(&keys)
        .terminal(Terminal::shell("/bin/sh"))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
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
