//! Warnings a peer can cause, rate-limited: a flood of bad logins or requests must not turn into
//! a flood of log lines (each kind logs at most [`PER_SECOND`] lines a second, then one line
//! saying how many were left out).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many warnings of one kind are logged per second.
pub(crate) const PER_SECOND: u32 = 10;

struct Window {
    start: Instant,
    logged: u32,
    dropped: u64,
}

static WINDOWS: Mutex<Option<HashMap<&'static str, Window>>> = Mutex::new(None);

/// Runs `log` (which should emit one event) unless `kind` already logged [`PER_SECOND`] events
/// in the current second; reports the left-out count when a new second starts.
pub(crate) fn limited(kind: &'static str, log: impl FnOnce()) {
    let now = Instant::now();
    let (run, dropped) = {
        let mut guard = WINDOWS.lock().unwrap_or_else(|e| e.into_inner());
        let w = guard
            .get_or_insert_with(HashMap::new)
            .entry(kind)
            .or_insert(Window {
                start: now,
                logged: 0,
                dropped: 0,
            });
        let mut dropped = 0;
        if now.duration_since(w.start) >= Duration::from_secs(1) {
            dropped = std::mem::take(&mut w.dropped);
            w.start = now;
            w.logged = 0;
        }
        if w.logged < PER_SECOND {
            w.logged += 1;
            (true, dropped)
        } else {
            w.dropped += 1;
            (false, dropped)
        }
    };
    if dropped > 0 {
        tracing::warn!(kind, dropped, "similar warnings were left out of the log");
    }
    if run {
        log();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_per_second_lines_then_a_count() {
        let mut ran = 0;
        for _ in 0..1000 {
            limited("test-kind", || ran += 1);
        }
        assert_eq!(ran, PER_SECOND);
        let guard = WINDOWS.lock().unwrap();
        assert_eq!(
            guard.as_ref().unwrap()["test-kind"].dropped,
            1000 - u64::from(PER_SECOND)
        );
    }
}
