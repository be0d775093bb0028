//! Send credit for one call in one direction (HTTP/2-style flow control).

use std::sync::Mutex;

use tokio::sync::Notify;

/// Bytes a sender may still send on a call; the receiver grants more with WINDOW frames.
#[derive(Debug)]
pub(super) struct Credit {
    state: Mutex<(i64, bool)>,
    notify: Notify,
}

impl Credit {
    pub(super) fn new(initial: u32) -> Self {
        Self {
            state: Mutex::new((i64::from(initial), false)),
            notify: Notify::new(),
        }
    }

    /// Adds credit (a WINDOW frame arrived).
    pub(super) fn grant(&self, n: u32) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0 = s.0.saturating_add(i64::from(n));
        drop(s);
        self.notify.notify_one();
    }

    /// Wakes the sender for good: the call is over.
    pub(super) fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.notify.notify_one();
    }

    /// Waits for credit and takes up to `want` bytes of it; `None` once closed.
    pub(super) async fn take(&self, want: usize) -> Option<usize> {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if s.1 {
                    return None;
                }
                if s.0 > 0 {
                    let n = (want as i64).min(s.0);
                    s.0 -= n;
                    return Some(n as usize);
                }
            }
            notified.await;
        }
    }

    /// Takes `want` bytes at once if that much is available (the fast path for small bodies).
    pub(super) fn try_take_all(&self, want: usize) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !s.1 && s.0 >= want as i64 {
            s.0 -= want as i64;
            true
        } else {
            false
        }
    }
}
