//! The seam between a server's SSH handler and what runs on its session channels besides
//! rrssh: the handler forwards `pty-req`, `shell`, `exec` and `window-change` to a
//! [`SessionPrograms`] without knowing what runs (terminals, with the `terminal` feature).

use std::future::Future;
use std::pin::Pin;

use russh::server::{Handle, Msg};
use russh::{Channel, ChannelId};

use crate::Peer;
use crate::keys::AuthorizedKey;

/// What the client asked for in its `pty-req`.
#[derive(Debug, Clone)]
#[cfg_attr(
    not(feature = "terminal"),
    allow(dead_code, reason = "only terminals read it")
)]
pub(crate) struct PtyRequest {
    pub(crate) term: String,
    pub(crate) cols: u16,
    pub(crate) rows: u16,
}

/// A program running on a channel, until it ends or is hung up.
pub(crate) type Running = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a server runs on session channels for `shell` and `exec`.
pub(crate) trait SessionPrograms: Send + Sync + 'static {
    /// The state of one connection, once its key is known (by its `authorized_keys` line).
    fn for_connection(&self, entry: &AuthorizedKey) -> Box<dyn ConnectionPrograms>;
}

/// One connection's programs: their pending `pty-req`s and running sessions.
pub(crate) trait ConnectionPrograms: Send + Sync {
    /// Why this connection's key gets no program (`None`: it gets them).
    fn refusal(&self) -> Option<&'static str>;

    /// A `pty-req` on `channel`, for the program that follows; `false` if the key may not
    /// have a pseudo-terminal (its programs run on pipes).
    fn pty(&mut self, channel: ChannelId, pty: PtyRequest) -> bool;

    /// A `window-change` for the program on `channel`.
    fn resize(&mut self, channel: ChannelId, cols: u16, rows: u16);

    /// Starts the shell (`command` is `None`) or the command on `channel`; a forced command
    /// runs instead of what was asked. The future runs it to its end.
    fn start(
        &mut self,
        channel: Channel<Msg>,
        command: Option<String>,
        forced: Option<String>,
        peer: Peer,
        session: Handle,
    ) -> Running;

    /// `channel` is closed: forget what was kept for it.
    fn forget(&mut self, channel: ChannelId);
}
