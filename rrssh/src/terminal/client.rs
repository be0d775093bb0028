//! Opening a terminal session on a server, as `ssh -t` does.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};

use crate::Client;

/// What to ask for: the terminal type and size, and a command (none: a shell).
#[derive(Debug, Clone)]
pub struct TerminalOptions {
    pty: bool,
    term: String,
    cols: u16,
    rows: u16,
    command: Option<String>,
    idle_timeout: Option<Duration>,
}

impl Default for TerminalOptions {
    fn default() -> Self {
        Self {
            pty: true,
            term: "xterm-256color".to_owned(),
            cols: 80,
            rows: 24,
            command: None,
            idle_timeout: None,
        }
    }
}

impl TerminalOptions {
    /// A shell in an 80×24 `xterm-256color` terminal.
    pub fn new() -> Self {
        Self::default()
    }

    /// The terminal type (`TERM`).
    pub fn term(mut self, term: impl Into<String>) -> Self {
        self.term = term.into();
        self
    }

    /// Whether the program runs in a pseudo-terminal (the default), or on pipes, as `ssh -T`
    /// runs it (and `ssh` when its input is not a terminal): what is typed reaches it
    /// byte for byte, end of input included, and its standard error comes apart
    /// ([`TerminalOutput::next_part`]).
    pub fn pty(mut self, pty: bool) -> Self {
        self.pty = pty;
        self
    }

    /// The window size.
    pub fn size(mut self, cols: u16, rows: u16) -> Self {
        self.cols = cols;
        self.rows = rows;
        self
    }

    /// Runs a command instead of a shell.
    pub fn command(mut self, command: impl Into<String>) -> Self {
        self.command = Some(command.into());
        self
    }

    /// Hangs up when nothing was typed or printed for this long (none by default): the
    /// output then ends, with [`TerminalOutput::timed_out`] true.
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = Some(idle);
        self
    }
}

/// Why a terminal session could not be opened, or cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TerminalError {
    /// This connection cannot carry terminals (a plain-TCP or spawned-command carrier).
    #[error(
        "terminals need an SSH connection rrssh dialed itself, not a plain-TCP or spawned-command carrier"
    )]
    Unsupported,
    /// The server refused the pseudo-terminal.
    #[error("the server refused the pseudo-terminal")]
    PtyRefused,
    /// The server refused the shell or command (no terminals for this key, or none served).
    #[error("the server refused the session (it serves no terminals to this key)")]
    SessionRefused,
    /// The server refused the terminal and said why (an rrssh server tells a key that is
    /// not granted one, or forbidden one).
    #[error("the server refused the terminal: {0}")]
    Refused(String),
    /// The session is over: the program exited, the server closed it, or it was hung up.
    #[error("the terminal session is closed")]
    Closed,
    /// Nothing was typed or printed for longer than the idle timeout: the session was hung up.
    #[error("the terminal session was idle for {0:?} and was hung up")]
    Idle(Duration),
    /// The SSH connection failed.
    #[error("SSH error: {0}")]
    Ssh(String),
}

/// A part of what the program printed, and on which of its outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutputPart {
    /// On its standard output (all of it, in a pseudo-terminal).
    Stdout(Bytes),
    /// On its standard error (without a pseudo-terminal).
    Stderr(Bytes),
}

/// An open terminal session. Use its two halves at once: one task types into
/// [`input`](Self::input), another reads [`output`](Self::output).
#[derive(Debug)]
pub struct TerminalSession {
    /// Keystrokes and window changes, to the program.
    pub input: TerminalInput,
    /// What the program prints, and how it ended.
    pub output: TerminalOutput,
}

/// What both halves know of the session.
struct Shared {
    writer: ChannelWriteHalf<russh::client::Msg>,
    /// Set once the session is over (seen by the output half, or hung up).
    over: AtomicBool,
    /// When something was last typed or printed, in ms since `start`.
    active: AtomicU64,
    start: tokio::time::Instant,
}

impl Shared {
    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.active.store(ms, Ordering::Relaxed);
    }

    fn idle_since(&self) -> tokio::time::Instant {
        self.start + Duration::from_millis(self.active.load(Ordering::Relaxed))
    }

    fn check_open(&self) -> Result<(), TerminalError> {
        if self.over.load(Ordering::Acquire) {
            Err(TerminalError::Closed)
        } else {
            Ok(())
        }
    }
}

/// The sending half of a terminal session.
pub struct TerminalInput(Arc<Shared>);

/// The receiving half of a terminal session.
pub struct TerminalOutput {
    reader: ChannelReadHalf,
    /// What was printed before the session was confirmed.
    early: std::collections::VecDeque<OutputPart>,
    shared: Arc<Shared>,
    exit_status: Option<u32>,
    idle_timeout: Option<Duration>,
    idle: bool,
}

impl fmt::Debug for TerminalInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TerminalInput")
            .field("open", &self.is_open())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for TerminalOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TerminalOutput")
            .field("exit_status", &self.exit_status)
            .finish_non_exhaustive()
    }
}

fn gone(e: russh::Error) -> TerminalError {
    TerminalError::Ssh(e.to_string())
}

impl TerminalInput {
    /// Sends bytes as if typed; [`TerminalError::Closed`] once the session is over.
    pub async fn write(&self, data: impl Into<Bytes>) -> Result<(), TerminalError> {
        self.0.check_open()?;
        self.0.touch();
        self.0.writer.data_bytes(data).await.map_err(gone)
    }

    /// Tells the program the window has a new size.
    pub async fn resize(&self, cols: u16, rows: u16) -> Result<(), TerminalError> {
        self.0.check_open()?;
        self.0
            .writer
            .window_change(u32::from(cols), u32::from(rows), 0, 0)
            .await
            .map_err(gone)
    }

    /// Closes the input (end of file). The program keeps running.
    pub async fn eof(&self) -> Result<(), TerminalError> {
        self.0.check_open()?;
        self.0.writer.eof().await.map_err(gone)
    }

    /// Hangs up: closes the session, and the server ends the program (as when a terminal
    /// window is closed). Dropping the session without this leaves the program running until
    /// the connection closes.
    pub async fn close(&self) -> Result<(), TerminalError> {
        if self.0.over.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.0.writer.close().await.map_err(gone)
    }

    /// Whether the session is still open: not hung up, and its end not yet seen by the
    /// [`output`](TerminalSession::output) half (which learns it by being read).
    pub fn is_open(&self) -> bool {
        !self.0.over.load(Ordering::Acquire)
    }
}

impl TerminalOutput {
    /// The next bytes the program printed, on either output; `None` once the session ended
    /// (see [`exit_status`](Self::exit_status) and [`timed_out`](Self::timed_out)).
    pub async fn next(&mut self) -> Option<Bytes> {
        match self.next_part().await? {
            OutputPart::Stdout(b) | OutputPart::Stderr(b) => Some(b),
        }
    }

    /// Like [`next`](Self::next), telling standard output from standard error.
    pub async fn next_part(&mut self) -> Option<OutputPart> {
        if let Some(part) = self.early.pop_front() {
            return Some(part);
        }
        loop {
            if self.shared.over.load(Ordering::Acquire) && self.idle {
                return None;
            }
            let msg = match self.idle_timeout {
                None => self.reader.wait().await,
                Some(limit) => {
                    let until = self.shared.idle_since() + limit;
                    match tokio::time::timeout_at(until, self.reader.wait()).await {
                        Ok(msg) => msg,
                        Err(_)
                            if self.shared.idle_since() + limit > tokio::time::Instant::now() =>
                        {
                            continue;
                        }
                        Err(_) => {
                            // Idle too long: hang up.
                            self.idle = true;
                            self.shared.over.store(true, Ordering::Release);
                            let _ = self.shared.writer.close().await;
                            return None;
                        }
                    }
                }
            };
            let Some(msg) = msg else {
                self.shared.over.store(true, Ordering::Release);
                return None;
            };
            match msg {
                ChannelMsg::Data { data } => {
                    self.shared.touch();
                    return Some(OutputPart::Stdout(data));
                }
                ChannelMsg::ExtendedData { data, .. } => {
                    self.shared.touch();
                    return Some(OutputPart::Stderr(data));
                }
                ChannelMsg::ExitStatus { exit_status } => {
                    self.exit_status = Some(exit_status);
                    self.shared.over.store(true, Ordering::Release);
                }
                ChannelMsg::ExitSignal { .. } | ChannelMsg::Eof => {
                    self.shared.over.store(true, Ordering::Release);
                }
                ChannelMsg::Close => {
                    self.shared.over.store(true, Ordering::Release);
                    return None;
                }
                _ => {}
            }
        }
    }

    /// The program's exit status, once it has ended.
    pub fn exit_status(&self) -> Option<u32> {
        self.exit_status
    }

    /// Whether the session ended because it was idle longer than
    /// [`TerminalOptions::idle_timeout`].
    pub fn timed_out(&self) -> bool {
        self.idle
    }

    /// Whether the session is still open (as far as this half has read).
    pub fn is_open(&self) -> bool {
        !self.shared.over.load(Ordering::Acquire)
    }
}

impl Client {
    /// Opens a terminal session on the server (`ssh -t`): a pseudo-terminal running a shell, or
    /// [`TerminalOptions::command`]. The server must serve terminals to this key (an rrssh
    /// [`Server`](crate::Server) with the `terminal` feature and `Server::terminal`).
    pub async fn terminal(
        &self,
        options: TerminalOptions,
    ) -> Result<TerminalSession, TerminalError> {
        let channel = self
            .open_session_channel()
            .await
            .map_err(gone)?
            .ok_or(TerminalError::Unsupported)?;
        if options.pty {
            channel
                .request_pty(
                    true,
                    &options.term,
                    u32::from(options.cols),
                    u32::from(options.rows),
                    0,
                    0,
                    &[],
                )
                .await
                .map_err(gone)?;
        }
        match &options.command {
            Some(c) => channel.exec(true, c.as_bytes()).await.map_err(gone)?,
            None => channel.request_shell(true).await.map_err(gone)?,
        }
        let (mut reader, writer) = channel.split();
        // The replies to the two requests, in order, and what the server said on standard
        // error meanwhile (why it refused, if it did). An exit status before the replies means
        // no program ran: an rrssh server refusing the key says why, then ends the session.
        let wanted = if options.pty { 2 } else { 1 };
        let mut replies = 0;
        let mut refused = None;
        let mut said = Vec::new();
        let mut early = std::collections::VecDeque::new();
        while replies < wanted {
            match reader.wait().await {
                Some(ChannelMsg::Success) => replies += 1,
                Some(ChannelMsg::Failure) => {
                    refused.get_or_insert(if replies == 0 && options.pty {
                        TerminalError::PtyRefused
                    } else {
                        TerminalError::SessionRefused
                    });
                    replies += 1;
                }
                // What the program prints before the replies (on pipes, it may start at once)
                // is kept for the output half; it is bounded by the channel's window.
                Some(ChannelMsg::ExtendedData { data, .. }) => {
                    if said.len() < 4096 {
                        said.extend_from_slice(&data);
                    }
                    early.push_back(OutputPart::Stderr(data));
                }
                Some(ChannelMsg::Data { data }) => early.push_back(OutputPart::Stdout(data)),
                Some(ChannelMsg::ExitStatus { .. }) => {
                    refused.get_or_insert(TerminalError::SessionRefused);
                }
                Some(ChannelMsg::Close) | None => {
                    refused.get_or_insert(TerminalError::SessionRefused);
                    break;
                }
                Some(_) => {}
            }
        }
        if let Some(e) = refused {
            let _ = writer.close().await;
            let said = String::from_utf8_lossy(&said);
            let said = said.trim();
            return Err(if said.is_empty() {
                e
            } else {
                TerminalError::Refused(said.strip_prefix("rrssh: ").unwrap_or(said).to_owned())
            });
        }
        let shared = Arc::new(Shared {
            writer,
            over: AtomicBool::new(false),
            active: AtomicU64::new(0),
            start: tokio::time::Instant::now(),
        });
        Ok(TerminalSession {
            input: TerminalInput(shared.clone()),
            output: TerminalOutput {
                reader,
                shared,
                early,
                exit_status: None,
                idle_timeout: options.idle_timeout,
                idle: false,
            },
        })
    }
}
