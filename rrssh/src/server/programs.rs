//! Programs on one SSH connection's session channels (shells and commands, see
//! [`terminal`](crate::terminal)): which key gets them, what a refused one is told, and the task
//! that runs an accepted one. What runs is the server's [`SessionPrograms`], if it has any.

use russh::ChannelId;
use russh::server::Session;

use super::handler::ConnHandler;
use crate::Peer;
use crate::keys::AuthorizedKey;
use crate::observe::Event;
use crate::terminal::programs::PtyRequest;

/// The exit status of a refused shell or command.
const REFUSED: u32 = 1;

impl ConnHandler {
    /// Decides at authentication what programs the key gets on this connection.
    pub(super) fn grant_programs(&mut self, entry: &AuthorizedKey) {
        self.programs = self
            .shared
            .programs
            .as_ref()
            .map(|p| p.for_connection(entry));
    }

    /// Answers a `pty-req`: kept for the shell or command that follows, or refused (as sshd
    /// refuses one) when the key's line forbids a pseudo-terminal but grants commands, which
    /// then run on pipes. A key that gets no program at all is refused at that shell or
    /// command instead, where it is told why: a refused `pty-req` would make `ssh -t` quit
    /// before printing the reason (nothing is allocated until a program starts).
    pub(super) fn pty_requested(
        &mut self,
        channel: ChannelId,
        pty: PtyRequest,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        let Some(programs) = self.programs.as_mut() else {
            return session.channel_failure(channel);
        };
        if !self.channels.contains_key(&channel) {
            return session.channel_failure(channel);
        }
        if programs.pty(channel, pty) {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }

    /// A `window-change` for the program on `channel`.
    pub(super) fn resized(&mut self, channel: ChannelId, cols: u32, rows: u32) {
        if let Some(programs) = self.programs.as_mut() {
            programs.resize(
                channel,
                u16::try_from(cols).unwrap_or(u16::MAX),
                u16::try_from(rows).unwrap_or(u16::MAX),
            );
        }
    }

    /// Answers a shell request (`requested` is `None`) or an exec request: starts a program on
    /// `channel` if the server runs them and the key gets one. A key refused one is answered
    /// as sshd answers a login whose shell refuses it: the reason on the channel's standard
    /// error and exit status 1, both before the request's reply (so a client can tell that no
    /// program ran), then the channel ends and its slot is free at once.
    pub(super) fn start_program(
        &mut self,
        channel: ChannelId,
        requested: Option<String>,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        let (Some(programs), Some(peer)) = (self.programs.as_mut(), self.peer.clone()) else {
            return session.channel_failure(channel);
        };
        if !self.channels.contains_key(&channel) {
            return session.channel_failure(channel);
        }
        if let Some(why) = programs.refusal() {
            self.log_refusal(why);
            observe_terminal(
                &self.shared.observers,
                &peer,
                requested.as_deref(),
                None,
                Some(why),
            );
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
        let handle = session.handle();
        let command = self.forced_command.clone().or_else(|| requested.clone());
        observe_terminal(
            &self.shared.observers,
            &peer,
            command.as_deref(),
            None,
            None,
        );
        let observers = self.shared.observers.clone();
        let running = programs.start(
            ch,
            requested,
            self.forced_command.clone(),
            peer.clone(),
            handle.clone(),
        );
        let sessions = self.sessions.clone();
        let started = std::time::Instant::now();
        tokio::spawn(async move {
            running.await;
            // Over: the program exited, or it was hung up.
            let ran = Some(started.elapsed());
            observe_terminal(&observers, &peer, command.as_deref(), ran, None);
            sessions.end(channel, &handle).await;
        });
        session.channel_success(channel)
    }

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

/// Tells the server's observers of a terminal session opened (`ended` is `None`), ended, or
/// refused.
fn observe_terminal(
    observers: &Option<crate::observe::Observers>,
    peer: &Peer,
    command: Option<&str>,
    ended: Option<std::time::Duration>,
    refused: Option<&str>,
) {
    if let Some(o) = observers {
        o.emit(&Event::Terminal {
            peer,
            command,
            ended,
            refused,
        });
    }
}
