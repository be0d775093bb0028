//! One session: a program (in a pseudo-terminal or on pipes, see `spawn.rs`) joined to an SSH
//! channel until it exits or is hung up.

use russh::server::{Handle, Msg};
use russh::{Channel, ChannelId, ChannelMsg};
use tokio::sync::mpsc;

use super::Terminal;
use super::recording::Recorder;
use super::spawn::{self, Launch, Started};
use crate::Peer;

/// Runs the program `launch` asks for, copying between it and the channel, applying window
/// changes from `resize`, and ending the channel with the program's exit status; hangs up when
/// the channel closes or the connection is lost.
pub(crate) async fn run(
    terminal: Terminal,
    launch: Launch,
    peer: Peer,
    channel: Channel<Msg>,
    session: Handle,
    mut resize: mpsc::UnboundedReceiver<(u16, u16)>,
) {
    let id: ChannelId = channel.id();
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
    let recorder = match &terminal.recordings {
        None => None,
        Some(to) => {
            let size = launch.pty.as_ref().map_or((80, 24), |p| (p.cols, p.rows));
            let term = launch.pty.as_ref().map(|p| p.term.as_str());
            match Recorder::create(to, &peer, launch.command.as_deref(), size, term).await {
                Ok((r, path)) => {
                    tracing::info!(path = %path.display(), "session recorded");
                    Some(std::sync::Arc::new(r))
                }
                Err(e) => {
                    let e = format!("cannot record the session in {}: {e}", to.dir.display());
                    return refuse(&session, id, &e).await;
                }
            }
        }
    };
    // Output is copied by its own task, so a client that reads none of it still has its
    // close (or its lost connection) seen below.
    let started = spawn::start(
        &terminal,
        &launch,
        &peer,
        to_ch,
        touch.clone(),
        recorder.clone(),
    );
    let Started {
        mut input,
        mut output,
        mut child,
    } = match started {
        Ok(started) => started,
        Err(e) => {
            crate::logging::limited("terminal-start", || {
                tracing::warn!(error = %e, "terminal: cannot start the program");
            });
            let _ = session
                .extended_data(
                    id,
                    1,
                    format!("rrssh: cannot start the program: {e}\r\n").into_bytes(),
                )
                .await;
            let _ = session.exit_status_request(id, 127).await;
            let _ = session.eof(id).await;
            let _ = session.close(id).await;
            return;
        }
    };
    let command = launch.command;
    let in_terminal = launch.pty.is_some();
    tracing::info!(user = %peer.user(), fingerprint = %peer.fingerprint(), command = ?command, in_terminal, "session started");
    let mut input_open = true;
    let mut idle = false;
    let hung_up = loop {
        let until = idle_until();
        tokio::select! {
            // In the order the client sent them: a window change is handled before the input
            // that followed it (both are ready together when the handler queued them).
            biased;
            Some((cols, rows)) = resize.recv() => {
                input.resize(cols, rows);
                if let Some(r) = &recorder {
                    r.resize(cols, rows).await;
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
                    input_open = input.write(&data).await;
                }
                Some(ChannelMsg::Eof) => {
                    input_open = false;
                    input.end();
                }
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
        // Closing the terminal's master side sends the session SIGHUP (a program on pipes
        // sees its input end); a program still running a second later is killed.
        output.abort();
        let _ = output.await;
        drop(input);
        if tokio::time::timeout(std::time::Duration::from_secs(1), child.wait())
            .await
            .is_err()
        {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        tracing::info!(user = %peer.user(), idle, "session hung up");
        return;
    }
    let code = match child.wait().await {
        Ok(st) => st
            .code()
            .map_or(128 + st_signal(&st), |c| u32::try_from(c).unwrap_or(1)),
        Err(_) => 1,
    };
    tracing::info!(user = %peer.user(), code, "session ended");
    let _ = session.exit_status_request(id, code).await;
    let _ = session.eof(id).await;
    let _ = session.close(id).await;
}

/// Ends a session whose program will not run: `why` on its standard error, exit status 1.
async fn refuse(session: &Handle, id: ChannelId, why: &str) {
    crate::logging::limited("terminal-start", || {
        tracing::warn!("terminal: {why}");
    });
    let text = format!("rrssh: {why}\r\n").into_bytes();
    let _ = session.extended_data(id, 1, text).await;
    let _ = session.exit_status_request(id, 1).await;
    let _ = session.eof(id).await;
    let _ = session.close(id).await;
}

fn st_signal(st: &std::process::ExitStatus) -> u32 {
    use std::os::unix::process::ExitStatusExt;
    st.signal().and_then(|s| u32::try_from(s).ok()).unwrap_or(0)
}
