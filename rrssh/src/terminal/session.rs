//! One terminal session: a program in a pseudo-terminal joined to an SSH channel.

use pty_process::Size;
use russh::server::{Handle, Msg};
use russh::{Channel, ChannelId, ChannelMsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::Terminal;
use super::programs::PtyRequest;
use crate::Peer;

/// What to run, in what terminal.
#[derive(Debug, Clone, Default)]
pub(crate) struct Launch {
    /// The command to run with `-c` (none: the shell itself).
    pub(crate) command: Option<String>,
    /// What the client asked for when a forced command replaces it (`SSH_ORIGINAL_COMMAND`).
    pub(crate) original_command: Option<String>,
    pub(crate) pty: PtyRequest,
}

fn size(cols: u16, rows: u16) -> Size {
    Size::new(rows.max(1), cols.max(1))
}

/// Runs `terminal` (with `-c command` if given) in a pseudo-terminal, copying between it and
/// the channel, applying window changes from `resize`, and ending the channel with the
/// program's exit status; hangs up when the channel closes or the connection is lost.
pub(crate) async fn run(
    terminal: Terminal,
    launch: Launch,
    peer: Peer,
    channel: Channel<Msg>,
    session: Handle,
    mut resize: mpsc::UnboundedReceiver<(u16, u16)>,
) {
    let Launch {
        command,
        original_command,
        pty,
    } = launch;
    let id: ChannelId = channel.id();
    let started = async {
        let (master, pts) = pty_process::open()?;
        master.resize(size(pty.cols, pty.rows))?;
        let mut cmd = pty_process::Command::new(&terminal.program)
            .args(&terminal.args)
            .env("TERM", &pty.term)
            .env("RRSSH_USER", peer.user())
            .env("RRSSH_FINGERPRINT", peer.fingerprint())
            .kill_on_drop(true);
        for (k, v) in &terminal.envs {
            cmd = cmd.env(k, v);
        }
        if let Some(c) = &original_command {
            cmd = cmd.env("SSH_ORIGINAL_COMMAND", c);
        }
        if let Some(c) = &command {
            cmd = cmd.arg("-c").arg(c);
        }
        let child = cmd.spawn(pts)?;
        Ok::<_, pty_process::Error>((master, child))
    }
    .await;
    let (master, mut child) = match started {
        Ok(x) => x,
        Err(e) => {
            crate::logging::limited("terminal-start", || {
                tracing::warn!(error = %e, "terminal: cannot start the program");
            });
            let _ = session
                .data(
                    id,
                    format!("rrssh: cannot start the terminal: {e}\r\n").into_bytes(),
                )
                .await;
            let _ = session.exit_status_request(id, 127).await;
            let _ = session.eof(id).await;
            let _ = session.close(id).await;
            return;
        }
    };
    tracing::info!(user = %peer.user(), fingerprint = %peer.fingerprint(), command = ?command, "terminal session started");
    let (mut from_pty, mut to_pty) = master.into_split();
    let (mut from_ch, to_ch) = channel.split();
    let start = tokio::time::Instant::now();
    // When something was last typed or printed, in ms since `start`.
    let active = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let touch = {
        let active = active.clone();
        move || {
            let ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
            active.store(ms, std::sync::atomic::Ordering::Relaxed);
        }
    };
    let idle_limit = terminal.idle_timeout;
    let idle_until = || {
        let last =
            std::time::Duration::from_millis(active.load(std::sync::atomic::Ordering::Relaxed));
        idle_limit.map(|d| start + last + d)
    };
    let touch_out = touch.clone();
    // Output is copied by its own task, so a client that reads none of it still has its
    // close (or its lost connection) seen below.
    let mut output = tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match from_pty.read(&mut buf).await {
                // The program's side closed (it exited): Linux reports EIO.
                Ok(0) | Err(_) => return true,
                Ok(n) => {
                    touch_out();
                    let chunk = bytes::Bytes::copy_from_slice(&buf[..n]);
                    if to_ch.data_bytes(chunk).await.is_err() {
                        return false;
                    }
                }
            }
        }
    });
    let mut input_open = true;
    let mut idle = false;
    let hung_up = loop {
        let until = idle_until();
        tokio::select! {
            // In the order the client sent them: a window change is handled before the input
            // that followed it (both are ready together when the handler queued them).
            biased;
            Some((cols, rows)) = resize.recv() => {
                if let Err(e) = to_pty.resize(size(cols, rows)) {
                    tracing::debug!(error = %e, "terminal: resize failed");
                }
            }
            () = async { match until {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            } } => {
                if idle_until().is_some_and(|t| t <= tokio::time::Instant::now()) {
                    idle = true;
                    break true;
                }
            }
            done = &mut output => break !done.unwrap_or(false),
            // Read even after the end of input, to see the close.
            msg = from_ch.wait() => match msg {
                Some(ChannelMsg::Data { data }) if input_open => {
                    touch();
                    if to_pty.write_all(&data).await.is_err() {
                        input_open = false;
                    }
                }
                // End of input: the program keeps running, as under sshd.
                Some(ChannelMsg::Eof) => input_open = false,
                // The client closed the channel (or the connection is gone): hang up.
                Some(ChannelMsg::Close) | None => break true,
                Some(_) => {}
            },
        }
    };
    if hung_up {
        if idle {
            let secs = idle_limit.unwrap_or_default().as_secs();
            let _ = session
                .data(
                    id,
                    format!("\r\nrrssh: idle for {secs} s; hanging up\r\n").into_bytes(),
                )
                .await;
            let _ = session.exit_status_request(id, 129).await;
            let _ = session.eof(id).await;
            let _ = session.close(id).await;
        }
        // Closing the terminal's master side sends the session SIGHUP; a program that ignores
        // it is killed.
        output.abort();
        let _ = output.await;
        drop(to_pty);
        if tokio::time::timeout(std::time::Duration::from_secs(1), child.wait())
            .await
            .is_err()
        {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        tracing::info!(user = %peer.user(), idle, "terminal session hung up");
        return;
    }
    let code = match child.wait().await {
        Ok(st) => st
            .code()
            .map_or(128 + st_signal(&st), |c| u32::try_from(c).unwrap_or(1)),
        Err(_) => 1,
    };
    tracing::info!(user = %peer.user(), code, "terminal session ended");
    let _ = session.exit_status_request(id, code).await;
    let _ = session.eof(id).await;
    let _ = session.close(id).await;
}

fn st_signal(st: &std::process::ExitStatus) -> u32 {
    use std::os::unix::process::ExitStatusExt;
    st.signal().and_then(|s| u32::try_from(s).ok()).unwrap_or(0)
}
