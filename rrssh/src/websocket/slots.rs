//! The web listener's connections before they are upgraded (and while they serve HTTP): at
//! most so many in all, and so many from one source, an IPv4 address or an IPv6 /64 (what one
//! host can spread its connections over), so one source cannot take every slot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Every slot of one listener.
pub(super) struct Slots {
    all: Arc<Semaphore>,
    /// Slots held per source; an entry lives while its source holds one.
    per_source: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max: usize,
    max_per_source: usize,
}

/// Why no slot was given.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Full {
    /// Every slot is held.
    All(usize),
    /// This source holds its share.
    Source(usize),
}

/// A held slot, given back when dropped.
pub(super) struct Slot {
    _all: OwnedSemaphorePermit,
    per_source: Arc<Mutex<HashMap<IpAddr, usize>>>,
    source: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut map = self.per_source.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.source);
            }
        }
    }
}

/// The source `ip` counts against: itself (IPv4, or IPv4 mapped into IPv6), or its /64.
fn source(ip: IpAddr) -> IpAddr {
    match crate::keys::canonical_addr(ip) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 @ IpAddr::V4(_) => v4,
    }
}

impl Slots {
    pub(super) fn new(max: usize, max_per_source: usize) -> Self {
        Self {
            all: Arc::new(Semaphore::new(max)),
            per_source: Arc::default(),
            max,
            max_per_source,
        }
    }

    /// A slot for a connection from `ip`, if its source and the listener have one left.
    pub(super) fn take(&self, ip: IpAddr) -> Result<Slot, Full> {
        let source = source(ip);
        let mut map = self.per_source.lock().unwrap_or_else(|e| e.into_inner());
        let held = map.get(&source).copied().unwrap_or(0);
        if held >= self.max_per_source {
            return Err(Full::Source(self.max_per_source));
        }
        let all = self
            .all
            .clone()
            .try_acquire_owned()
            .map_err(|_| Full::All(self.max))?;
        map.insert(source, held + 1);
        drop(map);
        Ok(Slot {
            _all: all,
            per_source: self.per_source.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_holds_its_share_and_everything_comes_back() {
        let slots = Slots::new(4, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let b_neighbour: IpAddr = "2001:db8::ffff:1".parse().unwrap();
        let held_a = [slots.take(a).unwrap(), slots.take(a).unwrap()];
        assert_eq!(slots.take(a).err(), Some(Full::Source(2)));
        // An IPv4 address mapped into IPv6 is the same source.
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(slots.take(mapped).err(), Some(Full::Source(2)));
        // The same /64 is one source.
        let held_b = slots.take(b).unwrap();
        let held_b2 = slots.take(b_neighbour).unwrap();
        assert_eq!(slots.take(b).err(), Some(Full::Source(2)));
        // Four held: the listener is full for anyone.
        assert_eq!(
            slots.take("10.0.0.9".parse().unwrap()).err(),
            Some(Full::All(4))
        );
        drop(held_a);
        drop((held_b, held_b2));
        assert!(slots.per_source.lock().unwrap().is_empty(), "no entry left");
        assert_eq!(slots.all.available_permits(), 4);
        let _again = slots.take(a).unwrap();
    }
}
