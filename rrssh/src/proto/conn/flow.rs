//! Flow-control windows, in the manner of HTTP/2's: one per call and direction, and one for the
//! whole connection, each checked for overrun and overflow.

use super::super::limits::Limits;

/// What we may still send: the peer's grants minus what we sent.
#[derive(Debug, Clone, Copy)]
pub(super) struct SendWindow(i64);

impl SendWindow {
    pub(super) fn new(initial: u32) -> Self {
        Self(i64::from(initial))
    }

    /// No window at all: a peer that predates connection windows does not keep one.
    pub(super) fn unlimited() -> Self {
        Self(i64::MAX)
    }

    pub(super) fn available(self) -> usize {
        usize::try_from(self.0.max(0)).unwrap_or(usize::MAX)
    }

    pub(super) fn take(&mut self, n: usize) {
        if self.0 != i64::MAX {
            self.0 -= n as i64;
        }
    }

    /// A WINDOW frame: `Err` if it would take the window past 2^31 − 1 (a violation).
    pub(super) fn grant(&mut self, n: u32) -> Result<(), ()> {
        if self.0 == i64::MAX {
            return Ok(());
        }
        let next = self.0 + i64::from(n);
        if next > i64::from(Limits::MAX_WINDOW) {
            return Err(());
        }
        self.0 = next;
        Ok(())
    }
}

/// What the peer may still send us, and what the application consumed that we have not yet
/// granted back.
#[derive(Debug, Clone, Copy)]
pub(super) struct RecvWindow {
    left: i64,
    unacked: u32,
    threshold: u32,
}

impl RecvWindow {
    pub(super) fn new(initial: u32) -> Self {
        Self {
            left: i64::from(initial),
            unacked: 0,
            // Grant in batches of a quarter window, so WINDOW frames stay few.
            threshold: (initial / 4).max(1),
        }
    }

    /// Body bytes arrived: `Err` if the peer sent past the window.
    pub(super) fn receive(&mut self, n: usize) -> Result<(), ()> {
        self.left -= n as i64;
        if self.left < 0 { Err(()) } else { Ok(()) }
    }

    /// The application consumed `n` bytes: the increment to grant now, if a batch is full.
    pub(super) fn consume(&mut self, n: usize) -> Option<u32> {
        self.unacked = self
            .unacked
            .saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
        if self.unacked < self.threshold {
            return None;
        }
        let grant = std::mem::take(&mut self.unacked);
        self.left += i64::from(grant);
        Some(grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_window_refuses_overflow_past_2_31() {
        let mut w = SendWindow::new(Limits::MAX_WINDOW - 10);
        assert!(w.grant(10).is_ok());
        assert!(w.grant(1).is_err());
        w.take(100);
        assert_eq!(w.available(), Limits::MAX_WINDOW as usize - 100);
        assert!(SendWindow::unlimited().grant(u32::MAX).is_ok());
    }

    #[test]
    fn recv_window_catches_overrun_and_grants_in_quarters() {
        let mut w = RecvWindow::new(100);
        assert!(w.receive(100).is_ok());
        assert!(w.receive(1).is_err());
        let mut w = RecvWindow::new(100);
        w.receive(60).unwrap();
        assert_eq!(w.consume(20), None);
        assert_eq!(w.consume(5), Some(25));
        assert!(w.receive(65).is_ok(), "the grant reopened the window");
    }
}
