//! Terminal sessions on one SSH connection: which keys get one (see
//! [`terminal`](crate::terminal)), what a refused one is told, and the task that runs an
//! accepted one.

use russh::ChannelId;
use russh::server::Session;

use super::handler::ConnHandler;
use crate::keys::AuthorizedKey;

/// The exit status of a refused shell or command.
#[cfg(feature = "terminal")]
const REFUSED: u32 = 1;

impl ConnHandler {
    /// Decides at authentication whether the key gets terminals on this connection.
    #[cfg_attr(
        not(feature = "terminal"),
        allow(clippy::unused_self, reason = "no terminals without the feature")
    )]
    pub(super) fn grant_terminal(&mut self, entry: &AuthorizedKey) {
        #[cfg(feature = "terminal")]
        {
            self.terminal_refusal = self.shared.terminal.as_ref().and_then(|t| t.refusal(entry));
        }
        #[cfg(not(feature = "terminal"))]
        let _ = entry;
    }

    /// Answers a `pty-req`: kept for the shell or command that follows. A key that gets no
    /// terminal is refused at that shell or command, where it is told why: a refused `pty-req`
    /// would make `ssh -t` quit before printing the reason (nothing is allocated until a
    /// program starts).
    #[cfg(feature = "terminal")]
    pub(super) fn pty_requested(
        &mut self,
        channel: ChannelId,
        pty: crate::terminal::PtyRequest,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        if self.shared.terminal.is_none() || !self.channels.contains_key(&channel) {
            return session.channel_failure(channel);
        }
        if self.terminal_refusal.is_none() {
            self.ptys.insert(channel, pty);
        }
        session.channel_success(channel)
    }

    /// Answers a shell request (`requested` is `None`) or an exec request: starts a terminal
    /// session on `channel` if the server serves them and the key gets one. A key refused one
    /// is answered as sshd answers a login whose shell refuses it: the reason on the channel's
    /// standard error and exit status 1, both before the request's reply (so a client can tell
    /// that no program ran), then the channel ends and its slot is free at once.
    #[cfg(feature = "terminal")]
    pub(super) fn start_terminal(
        &mut self,
        channel: ChannelId,
        requested: Option<String>,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        let (Some(terminal), Some(peer)) = (self.shared.terminal.clone(), self.peer.clone()) else {
            return session.channel_failure(channel);
        };
        if !self.channels.contains_key(&channel) {
            return session.channel_failure(channel);
        }
        if let Some(why) = self.terminal_refusal {
            self.log_refusal(why);
            let text = format!("rrssh: no terminal for this key: {why}\r\n");
            session.extended_data(channel, 1, text.into_bytes())?;
            session.exit_status_request(channel, REFUSED)?;
            // Answered as done: `ssh` quits on a failed request before printing the reason.
            session.channel_success(channel)?;
            session.eof(channel)?;
            session.close(channel)?;
            // The SSH layer answers the client's CLOSE itself now: nothing else frees the slot.
            self.forget(channel);
            return Ok(());
        }
        let Some(ch) = self.channels.remove(&channel) else {
            return session.channel_failure(channel);
        };
        let pty = self.ptys.remove(&channel).unwrap_or_default();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        // Senders of sessions that ended go with the next one.
        self.resizers.retain(|_, tx| !tx.is_closed());
        self.resizers.insert(channel, tx);
        // A forced command runs instead of what was asked, which it finds in
        // SSH_ORIGINAL_COMMAND (as under sshd).
        let launch = match &self.forced_command {
            Some(forced) => crate::terminal::Launch {
                command: Some(forced.clone()),
                original_command: requested,
                pty,
            },
            None => crate::terminal::Launch {
                command: requested,
                original_command: None,
                pty,
            },
        };
        let handle = session.handle();
        let sessions = self.sessions.clone();
        tokio::spawn(async move {
            crate::terminal::run(terminal, launch, peer, ch, handle.clone(), rx).await;
            // Over: the program exited, or it was hung up.
            sessions.end(channel, &handle).await;
        });
        session.channel_success(channel)
    }

    #[cfg(not(feature = "terminal"))]
    #[allow(
        clippy::unused_self,
        reason = "the same signature as with the terminal feature"
    )]
    pub(super) fn start_terminal(
        &mut self,
        channel: ChannelId,
        _: Option<String>,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        session.channel_failure(channel)
    }

    #[cfg(feature = "terminal")]
    fn log_refusal(&self, why: &str) {
        let (fingerprint, user) = self
            .peer
            .as_ref()
            .map(|p| (p.fingerprint().to_owned(), p.user().to_owned()))
            .unwrap_or_default();
        crate::logging::limited("terminal-refused", || {
            tracing::warn!(%fingerprint, %user, "terminal refused: {why}");
        });
    }
}
