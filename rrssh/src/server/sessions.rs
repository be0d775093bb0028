//! The session channels of one SSH connection, counted against `Server::max_sessions`, and
//! shared with the tasks that serve them, so that a channel whose work ended frees its slot at
//! once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use russh::ChannelId;
use russh::server::Handle;

/// The open session channels of a connection.
#[derive(Clone, Default)]
pub(super) struct Sessions(Arc<Mutex<HashSet<ChannelId>>>);

impl Sessions {
    fn set(&self) -> std::sync::MutexGuard<'_, HashSet<ChannelId>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many are open.
    pub(super) fn len(&self) -> usize {
        self.set().len()
    }

    /// Whether none is open.
    pub(super) fn is_empty(&self) -> bool {
        self.set().is_empty()
    }

    /// Counts a newly opened channel.
    pub(super) fn insert(&self, channel: ChannelId) {
        self.set().insert(channel);
    }

    /// Frees the slot of a channel that closed (either side closed it); a channel already
    /// freed is left as it is.
    pub(super) fn remove(&self, channel: ChannelId) {
        self.set().remove(&channel);
    }

    /// Ends a channel whose work is over from the server's side: sends EOF and CLOSE (what
    /// was already sent on it goes first) and frees its slot without waiting for the client's
    /// CLOSE, which the SSH layer answers itself and does not report once the server closed.
    /// Harmless on a channel the client already closed.
    pub(super) async fn end(&self, channel: ChannelId, handle: &Handle) {
        let _ = handle.eof(channel).await;
        let _ = handle.close(channel).await;
        self.remove(channel);
    }
}
