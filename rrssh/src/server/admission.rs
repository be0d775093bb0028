//! Admission before authentication: how many connections may be in the handshake, from one
//! address and in all, and who gives way when they are all taken.
//!
//! Full, a new connection is refused only if its address already holds as many handshakes as
//! any other; else the oldest handshake of the address holding the most is dropped to make
//! room. Many addresses holding idle handshakes thus cannot keep out a login from an address
//! that holds none: they give way to it first, and to each other (as OpenSSH's `MaxStartups`
//! drops early, but aimed at those who hold the most rather than at random).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Default)]
struct Table {
    next: u64,
    /// Handshakes by age (oldest first): their address, and how to drop them.
    by_age: BTreeMap<u64, (IpAddr, Arc<Notify>)>,
    per_source: HashMap<IpAddr, usize>,
}

impl Table {
    fn remove(&mut self, id: u64) -> Option<Arc<Notify>> {
        let (ip, evict) = self.by_age.remove(&id)?;
        if let Some(n) = self.per_source.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&ip);
            }
        }
        Some(evict)
    }
}

/// The handshakes in progress on one server.
#[derive(Clone)]
pub(super) struct Admission {
    table: Arc<Mutex<Table>>,
    max: usize,
    per_source: usize,
}

/// A handshake's place, given back when dropped (authenticated, failed or gone).
pub(super) struct Admitted {
    table: Arc<Mutex<Table>>,
    id: u64,
    evicted: Arc<Notify>,
}

impl Admitted {
    /// Resolves if the handshake is dropped to make room for another.
    pub(super) fn evicted(&self) -> Arc<Notify> {
        self.evicted.clone()
    }
}

impl std::fmt::Debug for Admitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admitted").field("id", &self.id).finish()
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let removed = self
            .table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(self.id);
        drop(removed);
    }
}

impl Admission {
    pub(super) fn new(max: usize, per_source: usize) -> Self {
        Self {
            table: Arc::default(),
            max: max.max(1),
            per_source: per_source.max(1),
        }
    }

    /// Admits a handshake from `source`, dropping another's if full; `Err` says why not.
    pub(super) fn admit(&self, source: IpAddr) -> Result<Admitted, String> {
        let evicted = {
            let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
            let held = t.per_source.get(&source).copied().unwrap_or(0);
            if held >= self.per_source {
                return Err(format!(
                    "too many unauthenticated connections from {source} (limit {})",
                    self.per_source
                ));
            }
            let mut evicted = None;
            if t.by_age.len() >= self.max {
                let most = t.per_source.iter().max_by_key(|(_, n)| **n);
                let Some((&big, &n)) = most.filter(|(_, n)| held < **n) else {
                    return Err(format!(
                        "too many unauthenticated connections (limit {})",
                        self.max
                    ));
                };
                debug_assert!(n > held);
                let oldest = t
                    .by_age
                    .iter()
                    .find(|(_, (ip, _))| *ip == big)
                    .map(|(id, _)| *id);
                evicted = oldest.and_then(|id| t.remove(id));
            }
            let id = t.next;
            t.next += 1;
            let notify = Arc::new(Notify::new());
            t.by_age.insert(id, (source, notify.clone()));
            *t.per_source.entry(source).or_insert(0) += 1;
            (
                Admitted {
                    table: self.table.clone(),
                    id,
                    evicted: notify,
                },
                evicted,
            )
        };
        let (admitted, dropped) = evicted;
        if let Some(d) = dropped {
            // Woken unlocked: a permit is stored if the handshake is not waiting yet.
            d.notify_one();
        }
        Ok(admitted)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::Admission;

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
    }

    #[test]
    fn a_full_table_gives_way_to_an_address_that_holds_less() {
        let a = Admission::new(4, 3);
        let x: Vec<_> = (0..3).map(|_| a.admit(ip(1)).unwrap()).collect();
        assert!(
            a.admit(ip(1))
                .unwrap_err()
                .contains("from 127.0.0.1 (limit 3)")
        );
        let _y = a.admit(ip(2)).unwrap();
        // Full: ip(3) holds none, so the oldest of ip(1), which holds the most, gives way.
        let oldest = x[0].evicted();
        let z = a.admit(ip(3)).unwrap();
        assert!(futures_util::FutureExt::now_or_never(oldest.notified()).is_some());
        assert!(
            futures_util::FutureExt::now_or_never(x[1].evicted().notified()).is_none(),
            "only one gives way"
        );
        // ip(2) and ip(3) hold one each, ip(1) two: ip(1) is refused, ip(2) takes ip(1)'s place.
        assert!(a.admit(ip(1)).unwrap_err().contains("(limit 4)"));
        let _y2 = a.admit(ip(2)).unwrap();
        // ip(4) holds none: ip(2), which holds the most now, gives way.
        let _w = a.admit(ip(4)).unwrap();
        drop((x, z));
        assert_eq!(a.table.lock().unwrap().by_age.len(), 2);
    }

    #[test]
    fn dropped_handshakes_give_back_their_place() {
        let a = Admission::new(2, 2);
        let one = a.admit(ip(1)).unwrap();
        let two = a.admit(ip(1)).unwrap();
        drop((one, two));
        let t = a.table.lock().unwrap();
        assert!(t.by_age.is_empty() && t.per_source.is_empty());
    }
}
