//! Interactive terminal sessions, as `sshd` serves them.
//!
//! **Serving** needs the `terminal` feature (Unix only) and is off until
//! `Server::terminal` is set: `ssh -t host` then opens a shell in a pseudo-terminal, and
//! `ssh -t host CMD` runs a command in one.
//!
//! **Opening** one needs no feature: [`Client::terminal`](crate::Client::terminal) gives a
//! [`TerminalSession`] whose [`input`](TerminalSession::input) writes keystrokes and resizes the
//! window, and whose [`output`](TerminalSession::output) yields what the program prints, then its
//! exit status, over the same SSH connection as the calls (so the server is an rrssh `Server`).
//!
//! - The program runs as the server's own user (rrssh does not switch users), with `TERM` from
//!   the client's pty request and `RRSSH_USER` / `RRSSH_FINGERPRINT` naming the caller.
//! - Window size changes reach the program (`SIGWINCH`); its exit status is sent back, so
//!   `ssh` exits with it.
//! - **Only keys granted a terminal get one**: an explicit `pty` on the key's `authorized_keys`
//!   line, or the scope `terminal` in its `rrssh-scopes="…"` (the name itself: a wildcard such
//!   as `*` grants API scopes, not a shell). API-only and service keys get none, so turning
//!   terminals on for some keys does not hand a shell to the others. `no-pty` and `restrict`
//!   forbid the pseudo-terminal, and `pty` permits one again after `restrict`: the last of the
//!   three decides, as under sshd (`restrict,pty` permits one, `pty,restrict` does not). A key
//!   with the scope whose line forbids a pseudo-terminal has its `pty-req` refused, as sshd
//!   refuses it (so `ssh -t` fails), and runs commands on pipes. [`Terminal::for_every_key`] serves every key that is not
//!   forbidden one, as sshd does. A refused shell or command is told why on its standard error
//!   and ends with exit status 1; the server logs the refusal (rate-limited). Keys without a
//!   terminal still make calls.
//! - A session without a pty request (`ssh -T`, or `ssh host CMD` from a script) runs its
//!   program on pipes, as under sshd: the program's standard output is the channel's data, its
//!   standard error the channel's extended data, bytes pass unchanged, and the client's end of
//!   input ends the program's standard input. The session ends once the program has exited and
//!   both pipes are closed.
//! - Closing the session from the client ([`TerminalInput::close`]), or losing the connection,
//!   hangs up: the program gets `SIGHUP` (in a terminal) or the end of its input (on pipes),
//!   and is killed if it is still running a second later.
//!   This holds whatever the state of input and output: after an end of input
//!   ([`TerminalInput::eof`], which leaves the program running, as under `sshd`), and while the
//!   client reads none of the output.
//! - A key with a forced command (`command="…"` in `authorized_keys`) runs that command
//!   whatever the client asks, with the request in `SSH_ORIGINAL_COMMAND`, as under `sshd`. It
//!   needs the grant too.
//!
//! **In the browser** (the `web-terminal` feature): [`web::WebTerminal`] serves a page with
//! xterm.js whose sessions are opened with `Client::terminal`; `rrssh webshell` runs it.

mod client;
pub(crate) mod programs;
#[cfg(feature = "terminal")]
mod recording;
#[cfg(feature = "terminal")]
mod serve;
#[cfg(feature = "terminal")]
mod session;
#[cfg(feature = "terminal")]
mod spawn;
#[cfg(feature = "web-terminal")]
#[cfg_attr(docsrs, doc(cfg(feature = "web-terminal")))]
pub mod web;

#[cfg(feature = "terminal")]
use std::ffi::OsString;

pub use self::client::{
    OutputPart, TerminalError, TerminalInput, TerminalOptions, TerminalOutput, TerminalSession,
};
#[cfg(feature = "terminal")]
use self::session::run;
#[cfg(feature = "terminal")]
use self::spawn::Launch;

/// What a server runs for terminal sessions.
#[cfg(feature = "terminal")]
#[cfg_attr(docsrs, doc(cfg(feature = "terminal")))]
#[derive(Debug, Clone)]
pub struct Terminal {
    pub(crate) program: OsString,
    pub(crate) args: Vec<OsString>,
    pub(crate) envs: Vec<(OsString, OsString)>,
    pub(crate) idle_timeout: Option<std::time::Duration>,
    pub(crate) every_key: bool,
    pub(crate) recordings: Option<recording::Recordings>,
}

#[cfg(feature = "terminal")]
impl Terminal {
    /// Runs `program` for a shell request, and `program -c CMD` for a command
    /// (`/bin/bash`, `/bin/sh`, …).
    pub fn shell(program: impl Into<OsString>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            envs: Vec::new(),
            idle_timeout: None,
            every_key: false,
            recordings: None,
        }
    }

    /// The shell named by `$SHELL`, else `/bin/sh`.
    pub fn login_shell() -> Self {
        Self::shell(std::env::var_os("SHELL").unwrap_or_else(|| "/bin/sh".into()))
    }

    /// An argument given to the program before `-c CMD` (`-l` for a login shell).
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Hangs up a session when nothing was typed or printed for this long (none by default,
    /// as under sshd): the client is told why, the program gets `SIGHUP`.
    pub fn idle_timeout(mut self, idle: std::time::Duration) -> Self {
        self.idle_timeout = Some(idle);
        self
    }

    /// Serves terminals to every key whose `authorized_keys` line does not forbid one
    /// (`no-pty`, `restrict` without a later `pty`), as sshd does, instead of only to keys
    /// granted one (`pty`, or `rrssh-scopes="terminal"`). Only for servers whose every key,
    /// API-only and service keys included, is trusted with a shell as the server's user.
    pub fn for_every_key(mut self) -> Self {
        self.every_key = true;
        self
    }

    /// Why `key` gets no shell or command from this server, or `None` if it gets them.
    pub(crate) fn refusal(&self, key: &crate::keys::AuthorizedKey) -> Option<&'static str> {
        if self.every_key || key.grants_commands() {
            None
        } else if !key.allows_pty() {
            Some("its authorized_keys line forbids one (no-pty, or restrict without a later pty)")
        } else {
            Some(
                "it is not granted one (`pty` or rrssh-scopes=\"terminal\" on its authorized_keys line)",
            )
        }
    }

    /// Records every session in `dir` as an asciicast v2 file (`asciinema play` replays it):
    /// what the program prints and the window's changes, not what is typed. At most 64 MiB a
    /// session ([`record_limit`](Self::record_limit)); a session whose recording cannot be made
    /// is refused.
    pub fn record(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.recordings = Some(recording::Recordings {
            dir: dir.into(),
            limit: 64 << 20,
        });
        self
    }

    /// The most bytes one session's recording takes (see [`record`](Self::record)); past it,
    /// the rest of the session is not recorded.
    pub fn record_limit(mut self, bytes: u64) -> Self {
        if let Some(r) = &mut self.recordings {
            r.limit = bytes;
        }
        self
    }

    /// Whether the recording directory (see [`record`](Self::record)) can be used.
    pub fn check_recordings(&self) -> std::io::Result<()> {
        self.recordings
            .as_ref()
            .map_or(Ok(()), |r| recording::check_dir(&r.dir))
    }

    /// An environment variable for the program.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }
}
