//! Starting a session's program, as sshd does: in a pseudo-terminal when the client asked for
//! one, else on pipes, with its standard output as the channel's data and its standard error
//! as the channel's extended data (so `ssh host cat file > copy` copies the bytes as they are,
//! and the program's errors reach the client's standard error).

use std::ffi::OsString;
use std::process::Stdio;
use std::sync::Arc;

use bytes::Bytes;
use pty_process::Size;
use russh::ChannelWriteHalf;
use russh::server::Msg;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin};
use tokio::task::JoinHandle;

use super::Terminal;
use super::programs::PtyRequest;
use super::recording::Recorder;
use crate::Peer;

/// SSH's extended data type for standard error.
const STDERR: u32 = 1;

/// What to run, and how.
#[derive(Debug, Clone, Default)]
pub(crate) struct Launch {
    /// The command to run with `-c` (none: the shell itself).
    pub(crate) command: Option<String>,
    /// What the client asked for when a forced command replaces it (`SSH_ORIGINAL_COMMAND`).
    pub(crate) original_command: Option<String>,
    /// The client's pty request: the program runs in a terminal of this size, else on pipes.
    pub(crate) pty: Option<PtyRequest>,
}

/// A program started on a channel.
pub(crate) struct Started {
    /// Where the client's input goes.
    pub(crate) input: Input,
    /// Copies the program's output to the channel; ends with `true` once the program's side
    /// closed (it exited), `false` if the channel could take no more.
    pub(crate) output: JoinHandle<bool>,
    pub(crate) child: Child,
}

/// The program's input: its pseudo-terminal, or the pipe to its standard input (gone after
/// the client's end of input).
pub(crate) enum Input {
    Pty(pty_process::OwnedWritePty),
    Pipe(Option<ChildStdin>),
}

impl Input {
    /// Writes what the client typed or sent; `false` once the program takes no more.
    pub(crate) async fn write(&mut self, data: &[u8]) -> bool {
        match self {
            Self::Pty(pty) => pty.write_all(data).await.is_ok(),
            Self::Pipe(Some(stdin)) => stdin.write_all(data).await.is_ok(),
            Self::Pipe(None) => false,
        }
    }

    /// The client's end of input: a program on pipes reads the end of its standard input; one
    /// in a terminal keeps running, as under sshd.
    pub(crate) fn end(&mut self) {
        if let Self::Pipe(stdin) = self {
            *stdin = None;
        }
    }

    /// A window change (only a terminal has a size).
    pub(crate) fn resize(&self, cols: u16, rows: u16) {
        if let Self::Pty(pty) = self
            && let Err(e) = pty.resize(size(cols, rows))
        {
            tracing::debug!(error = %e, "terminal: resize failed");
        }
    }
}

fn size(cols: u16, rows: u16) -> Size {
    Size::new(rows.max(1), cols.max(1))
}

/// The arguments and environment of the program `launch` asks for.
fn arguments(
    terminal: &Terminal,
    launch: &Launch,
    peer: &Peer,
) -> (Vec<OsString>, Vec<(OsString, OsString)>) {
    let mut args = terminal.args.clone();
    if let Some(c) = &launch.command {
        args.extend(["-c".into(), c.into()]);
    }
    let mut envs: Vec<(OsString, OsString)> = vec![
        ("RRSSH_USER".into(), peer.user().into()),
        ("RRSSH_FINGERPRINT".into(), peer.fingerprint().into()),
    ];
    envs.extend(terminal.envs.iter().cloned());
    if let Some(c) = &launch.original_command {
        envs.push(("SSH_ORIGINAL_COMMAND".into(), c.into()));
    }
    if let Some(pty) = &launch.pty {
        envs.push(("TERM".into(), pty.term.clone().into()));
    }
    (args, envs)
}

/// Starts the program `launch` asks for, its output copied to `to_channel`; `touch` is called
/// whenever it prints something.
pub(crate) fn start(
    terminal: &Terminal,
    launch: &Launch,
    peer: &Peer,
    to_channel: ChannelWriteHalf<Msg>,
    touch: impl Fn() + Send + Sync + 'static,
    recorder: Option<Arc<Recorder>>,
) -> Result<Started, String> {
    let (args, envs) = arguments(terminal, launch, peer);
    let out = Out {
        to: to_channel,
        touch,
        recorder,
    };
    match &launch.pty {
        Some(pty) => in_terminal(terminal, pty, &args, &envs, out).map_err(|e| e.to_string()),
        None => on_pipes(terminal, &args, &envs, out).map_err(|e| e.to_string()),
    }
}

/// Where a program's output goes: the channel, the idle clock, the recording.
struct Out<T> {
    to: ChannelWriteHalf<Msg>,
    touch: T,
    recorder: Option<Arc<Recorder>>,
}

fn in_terminal(
    terminal: &Terminal,
    pty: &PtyRequest,
    args: &[OsString],
    envs: &[(OsString, OsString)],
    out: Out<impl Fn() + Send + Sync + 'static>,
) -> Result<Started, pty_process::Error> {
    let (master, pts) = pty_process::open()?;
    master.resize(size(pty.cols, pty.rows))?;
    let mut cmd = pty_process::Command::new(&terminal.program)
        .args(args)
        .kill_on_drop(true);
    for (k, v) in envs {
        cmd = cmd.env(k, v);
    }
    let child = cmd.spawn(pts)?;
    let (from_pty, to_pty) = master.into_split();
    // The program's side closed when it exited: Linux reports EIO, which ends the copy too.
    let output = tokio::spawn(async move { copy_out(from_pty, &out, None).await });
    Ok(Started {
        input: Input::Pty(to_pty),
        output,
        child,
    })
}

fn on_pipes(
    terminal: &Terminal,
    args: &[OsString],
    envs: &[(OsString, OsString)],
    out: Out<impl Fn() + Send + Sync + 'static>,
) -> std::io::Result<Started> {
    let mut child = tokio::process::Command::new(&terminal.program)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(std::io::Error::other("the program's pipes are missing"));
    };
    // Over once both pipes reached their end: the program and whatever it started that
    // shares them have exited.
    let output = tokio::spawn(async move {
        let (out, err) = tokio::join!(
            copy_out(stdout, &out, None),
            copy_out(stderr, &out, Some(STDERR)),
        );
        out && err
    });
    Ok(Started {
        input: Input::Pipe(Some(stdin)),
        output,
        child,
    })
}

/// Copies `from` to the channel (as extended data of type `ext`, if given) until its end
/// (`true`) or until the channel takes no more (`false`).
async fn copy_out(
    mut from: impl AsyncRead + Unpin,
    out: &Out<impl Fn()>,
    ext: Option<u32>,
) -> bool {
    let (to, touch) = (&out.to, &out.touch);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return true,
            Ok(n) => {
                touch();
                if let Some(r) = &out.recorder {
                    r.output(&buf[..n]).await;
                }
                let chunk = Bytes::copy_from_slice(&buf[..n]);
                let sent = match ext {
                    None => to.data_bytes(chunk).await,
                    Some(ext) => to.extended_data_bytes(ext, chunk).await,
                };
                if sent.is_err() {
                    return false;
                }
            }
        }
    }
}
