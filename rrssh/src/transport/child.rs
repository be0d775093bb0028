//! The child process (`ssh`, or any command) that carries a connection: killed when the last
//! handle to the connection goes.

use std::sync::Mutex;

use tokio::sync::oneshot;

/// Kills the child when the last client clone goes (or on [`kill`](Self::kill)).
pub(crate) struct ChildGuard {
    kill: Mutex<Option<oneshot::Sender<()>>>,
}

impl ChildGuard {
    /// A guard that kills the child by sending on `kill`.
    pub(crate) fn new(kill: oneshot::Sender<()>) -> Self {
        Self {
            kill: Mutex::new(Some(kill)),
        }
    }

    pub(crate) fn kill(&self) {
        if let Some(tx) = self.kill.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}
