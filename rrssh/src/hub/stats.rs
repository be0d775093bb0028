//! What a hub counts of the calls it relays to each connected peer (as NATS services answer
//! `$SRV.STATS`): calls, errors, calls waiting for their answer, and the time answers took to
//! begin. Counted per connection, and gone with it: a peer that reconnects starts at zero.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A peer's counts, as `GET /.well-known/rrssh/peers` and `rrssh peers` show them.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceStats {
    /// Calls relayed to it whose answer began (or failed).
    pub calls: u64,
    /// Of those, the ones answered 5xx or not answered (unreachable, timed out, broken).
    pub errors: u64,
    /// Calls relayed to it whose answer has not begun yet.
    pub waiting: u64,
    /// The mean time its answers took to begin, in microseconds.
    pub mean_answer_us: u64,
}

/// The counters behind [`ServiceStats`], updated without a lock.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    calls: AtomicU64,
    errors: AtomicU64,
    waiting: AtomicU64,
    answer_us: AtomicU64,
}

impl Counters {
    /// A call begins waiting for its answer; [`Waiting::answered`] ends the wait.
    pub(crate) fn begin(self: &std::sync::Arc<Self>) -> Waiting {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        Waiting {
            counters: self.clone(),
            started: std::time::Instant::now(),
            done: false,
        }
    }

    pub(crate) fn read(&self) -> ServiceStats {
        let calls = self.calls.load(Ordering::Relaxed);
        ServiceStats {
            calls,
            errors: self.errors.load(Ordering::Relaxed),
            waiting: self.waiting.load(Ordering::Relaxed),
            mean_answer_us: self
                .answer_us
                .load(Ordering::Relaxed)
                .checked_div(calls)
                .unwrap_or(0),
        }
    }

    fn answered(&self, took: Duration, error: bool) {
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.answer_us.fetch_add(us, Ordering::Relaxed);
        if error {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A relayed call waiting for its answer; dropped unanswered (the caller went away), it leaves
/// the count of those waiting without counting as a call.
pub(crate) struct Waiting {
    counters: std::sync::Arc<Counters>,
    started: std::time::Instant,
    done: bool,
}

impl Waiting {
    /// The answer began with `status` (`None`: the call failed before one).
    pub(crate) fn answered(mut self, status: Option<u16>) {
        self.done = true;
        let error = status.is_none_or(|s| s >= 500);
        self.counters.answered(self.started.elapsed(), error);
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.done {
            self.counters.waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Counters;
    use std::sync::Arc;

    #[test]
    fn calls_errors_waiting_and_the_mean() {
        let c = Arc::new(Counters::default());
        let a = c.begin();
        let b = c.begin();
        let gone = c.begin();
        assert_eq!(c.read().waiting, 3);
        a.answered(Some(200));
        b.answered(Some(503));
        drop(gone);
        c.begin().answered(None);
        let s = c.read();
        assert_eq!((s.calls, s.errors, s.waiting), (3, 2, 0));
    }
}
