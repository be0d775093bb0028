//! Terminals as a server's session programs: which keys get one, the `pty-req` kept for the
//! program that follows, and window changes passed to running sessions.

use std::collections::HashMap;

use russh::server::{Handle, Msg};
use russh::{Channel, ChannelId};
use tokio::sync::mpsc;

use super::Terminal;
use super::programs::{ConnectionPrograms, PtyRequest, Running, SessionPrograms};
use crate::Peer;
use crate::keys::AuthorizedKey;

impl SessionPrograms for Terminal {
    fn for_connection(&self, entry: &AuthorizedKey) -> Box<dyn ConnectionPrograms> {
        Box::new(Terminals {
            terminal: self.clone(),
            refusal: self.refusal(entry),
            pty_allowed: entry.allows_pty(),
            ptys: HashMap::new(),
            resizers: HashMap::new(),
        })
    }
}

/// The terminals of one connection. Each map holds at most one entry per open channel, and
/// channels are bounded by the server's `max_sessions`.
struct Terminals {
    terminal: Terminal,
    refusal: Option<&'static str>,
    /// Whether the key's line allows a pseudo-terminal (else its commands run on pipes).
    pty_allowed: bool,
    /// Pty requests per channel, until the shell or command starts.
    ptys: HashMap<ChannelId, PtyRequest>,
    /// Window size changes for running sessions.
    resizers: HashMap<ChannelId, mpsc::UnboundedSender<(u16, u16)>>,
}

impl ConnectionPrograms for Terminals {
    fn refusal(&self) -> Option<&'static str> {
        self.refusal
    }

    fn pty(&mut self, channel: ChannelId, pty: PtyRequest) -> bool {
        if self.refusal.is_some() {
            // Accepted, so that the shell or command that follows is told why it is refused.
            return true;
        }
        if self.pty_allowed {
            self.ptys.insert(channel, pty);
        }
        self.pty_allowed
    }

    fn resize(&mut self, channel: ChannelId, cols: u16, rows: u16) {
        if let Some(tx) = self.resizers.get(&channel) {
            let _ = tx.send((cols, rows));
        }
    }

    fn start(
        &mut self,
        channel: Channel<Msg>,
        command: Option<String>,
        forced: Option<String>,
        peer: Peer,
        session: Handle,
    ) -> Running {
        let id = channel.id();
        let pty = self.ptys.remove(&id);
        let (tx, rx) = mpsc::unbounded_channel();
        // Senders of sessions that ended go with the next one.
        self.resizers.retain(|_, tx| !tx.is_closed());
        self.resizers.insert(id, tx);
        // A forced command runs instead of what was asked, which it finds in
        // SSH_ORIGINAL_COMMAND (as under sshd).
        let launch = match forced {
            Some(forced) => super::Launch {
                command: Some(forced),
                original_command: command,
                pty,
            },
            None => super::Launch {
                command,
                original_command: None,
                pty,
            },
        };
        Box::pin(super::run(
            self.terminal.clone(),
            launch,
            peer,
            channel,
            session,
            rx,
        ))
    }

    fn forget(&mut self, channel: ChannelId) {
        self.ptys.remove(&channel);
        self.resizers.remove(&channel);
    }
}
