//! A counter with a ceiling, taken from and given back to without a lock.

use std::sync::atomic::{AtomicUsize, Ordering};

/// How much of something is held, and the most that may be.
#[derive(Debug)]
pub(crate) struct Meter {
    used: AtomicUsize,
    max: usize,
}

impl Meter {
    pub(crate) const fn new(max: usize) -> Self {
        Self {
            used: AtomicUsize::new(0),
            max,
        }
    }

    /// Takes `n`, or says how much is held when `n` more would pass the ceiling.
    pub(crate) fn take(&self, n: usize) -> Result<(), usize> {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            if cur.saturating_add(n) > self.max {
                return Err(cur);
            }
            match self
                .used
                .compare_exchange_weak(cur, cur + n, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(now) => cur = now,
            }
        }
    }

    /// Gives back `n` taken before.
    pub(crate) fn give_back(&self, n: usize) {
        let before = self.used.fetch_sub(n, Ordering::AcqRel);
        debug_assert!(before >= n, "gave back more than was taken");
    }

    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::Meter;

    #[test]
    fn takes_up_to_the_ceiling_and_gives_back() {
        let m = Meter::new(10);
        m.take(6).unwrap();
        assert_eq!(m.take(5), Err(6));
        m.take(4).unwrap();
        assert_eq!(m.take(1), Err(10));
        m.give_back(10);
        assert_eq!(m.used(), 0);
        assert_eq!(m.take(usize::MAX), Err(0));
    }

    #[test]
    fn many_threads_never_pass_the_ceiling() {
        let m = std::sync::Arc::new(Meter::new(1000));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    let mut got = 0;
                    for _ in 0..10_000 {
                        if m.take(7).is_ok() {
                            assert!(m.used() <= 1000);
                            m.give_back(7);
                            got += 1;
                        }
                    }
                    got
                })
            })
            .collect();
        let got: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(got > 0);
        assert_eq!(m.used(), 0);
    }
}
