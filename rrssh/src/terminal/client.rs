//! Opening a terminal session on a server, as `ssh -t` does.

use std::fmt;

use bytes::Bytes;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};

use crate::Client;

/// What to ask for: the terminal type and size, and a command (none: a shell).
#[derive(Debug, Clone)]
pub struct TerminalOptions {
    term: String,
    cols: u16,
    rows: u16,
    command: Option<String>,
}

impl Default for TerminalOptions {
    fn default() -> Self {
        Self {
            term: "xterm-256color".to_owned(),
            cols: 80,
            rows: 24,
            command: None,
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
}

/// A terminal session could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TerminalError(String);

/// An open terminal session. Use its two halves at once: one task types into
/// [`input`](Self::input), another reads [`output`](Self::output).
#[derive(Debug)]
pub struct TerminalSession {
    /// Keystrokes and window changes, to the program.
    pub input: TerminalInput,
    /// What the program prints, and how it ended.
    pub output: TerminalOutput,
}

/// The sending half of a terminal session.
pub struct TerminalInput(ChannelWriteHalf<russh::client::Msg>);

/// The receiving half of a terminal session.
pub struct TerminalOutput {
    reader: ChannelReadHalf,
    exit_status: Option<u32>,
}

impl fmt::Debug for TerminalInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TerminalInput").finish_non_exhaustive()
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
    TerminalError(format!("the terminal session is gone: {e}"))
}

impl TerminalInput {
    /// Sends bytes as if typed.
    pub async fn write(&self, data: impl Into<Bytes>) -> Result<(), TerminalError> {
        self.0.data_bytes(data).await.map_err(gone)
    }

    /// Tells the program the window has a new size.
    pub async fn resize(&self, cols: u16, rows: u16) -> Result<(), TerminalError> {
        self.0
            .window_change(u32::from(cols), u32::from(rows), 0, 0)
            .await
            .map_err(gone)
    }

    /// Closes the input (end of file). The program keeps running.
    pub async fn eof(&self) -> Result<(), TerminalError> {
        self.0.eof().await.map_err(gone)
    }

    /// Hangs up: closes the session, and the server ends the program (as when a terminal
    /// window is closed). Dropping the session without this leaves the program running until
    /// the connection closes.
    pub async fn close(&self) -> Result<(), TerminalError> {
        self.0.close().await.map_err(gone)
    }
}

impl TerminalOutput {
    /// The next bytes the program printed; `None` once the session ended.
    pub async fn next(&mut self) -> Option<Bytes> {
        loop {
            match self.reader.wait().await? {
                ChannelMsg::Data { data } => return Some(data),
                ChannelMsg::ExtendedData { data, .. } => return Some(data),
                ChannelMsg::ExitStatus { exit_status } => self.exit_status = Some(exit_status),
                ChannelMsg::Close => return None,
                _ => {}
            }
        }
    }

    /// The program's exit status, once it has ended.
    pub fn exit_status(&self) -> Option<u32> {
        self.exit_status
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
        let channel = self.open_session_channel().await.map_err(TerminalError)?;
        let refused = |what: &str| TerminalError(format!("the server refused the {what}"));
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
        match &options.command {
            Some(c) => channel.exec(true, c.as_bytes()).await.map_err(gone)?,
            None => channel.request_shell(true).await.map_err(gone)?,
        }
        let (mut reader, writer) = channel.split();
        // The replies to the two requests, in order.
        let mut replies = 0;
        while replies < 2 {
            match reader.wait().await {
                Some(ChannelMsg::Success) => replies += 1,
                Some(ChannelMsg::Failure) => {
                    return Err(refused(if replies == 0 {
                        "pseudo-terminal"
                    } else {
                        "session"
                    }));
                }
                Some(ChannelMsg::Close) | None => return Err(refused("session")),
                Some(_) => {}
            }
        }
        Ok(TerminalSession {
            input: TerminalInput(writer),
            output: TerminalOutput {
                reader,
                exit_status: None,
            },
        })
    }
}
