//! Exponential backoff with full jitter: between reconnection attempts, and between retries.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Exponential backoff with full jitter between reconnection attempts.
///
/// Attempt `n` (from 0) waits a random time in `[0, min(max, initial × factor^n)]`; the attempt
/// count starts over once a connection has stayed up for `reset_after`.
///
/// The defaults (250 ms doubling to at most 2 s) are a recovery policy: however long a server
/// was away, every client tries again within 2 s of its return, and the attempts of a fleet
/// that lost it at once are spread evenly over those 2 s rather than arriving together. The
/// price is one connection attempt per client per second on average while the server is down;
/// a larger fleet, or a server that sheds load by refusing, wants a larger [`max`](Self::max)
/// (`--reconnect-max` on the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backoff {
    /// The first ceiling (default 250 ms).
    pub initial: Duration,
    /// How much the ceiling grows per failed attempt (default 2).
    pub factor: u32,
    /// The largest ceiling (default 2 s).
    pub max: Duration,
    /// A connection up this long resets the attempt count (default 10 s).
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(250),
            factor: 2,
            max: Duration::from_secs(2),
            reset_after: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// Sets the first ceiling.
    #[must_use]
    pub fn initial(mut self, d: Duration) -> Self {
        self.initial = d;
        self
    }

    /// Sets the largest ceiling.
    #[must_use]
    pub fn max(mut self, d: Duration) -> Self {
        self.max = d;
        self
    }

    /// The ceiling of attempt `attempt` (from 0).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = self.factor.max(1).saturating_pow(attempt.min(64));
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The wait before attempt `attempt`: uniform in `[0, ceiling(attempt)]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.ceiling(attempt).mul_f64(jitter())
    }
}

/// A uniform number in `[0, 1)` (splitmix64 over a time-seeded counter: jitter, not crypto).
fn jitter() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut z = STATE
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_add(seed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_grow_by_the_factor_up_to_the_cap() {
        let b = Backoff::default().max(Duration::from_secs(30));
        let ms = |n| b.ceiling(n).as_millis();
        assert_eq!(
            (0..9).map(ms).collect::<Vec<_>>(),
            [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]
        );
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(30));
        let d = Backoff::default();
        assert_eq!(d.ceiling(3), Duration::from_secs(2));
        assert_eq!(d.ceiling(u32::MAX), Duration::from_secs(2));
    }

    #[test]
    fn delays_are_spread_over_the_whole_range() {
        let b = Backoff::default().max(Duration::from_secs(30));
        let delays: Vec<Duration> = (0..2000).map(|_| b.delay(3)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(2)));
        let low = delays
            .iter()
            .filter(|d| **d < Duration::from_millis(500))
            .count();
        let high = delays
            .iter()
            .filter(|d| **d > Duration::from_millis(1500))
            .count();
        // Full jitter: about a quarter in each end of the range.
        assert!((300..700).contains(&low), "{low}");
        assert!((300..700).contains(&high), "{high}");
    }
}
