//! Bytes charged to an account, given back when freed.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::account::{Account, OverBudget};

/// Bytes taken from an [`Account`], given back when dropped.
#[derive(Debug, Default)]
pub(crate) struct Charge {
    account: Account,
    held: usize,
}

impl Charge {
    /// Nothing charged yet, to `account`.
    pub(crate) fn new(account: Account) -> Self {
        Self { account, held: 0 }
    }

    /// Charges `n` more bytes, or nothing.
    pub(crate) fn grow(&mut self, n: usize) -> Result<(), OverBudget> {
        self.account.take(n)?;
        self.held += n;
        Ok(())
    }

    /// Gives back `n` of the bytes charged.
    pub(crate) fn shrink(&mut self, n: usize) {
        let n = n.min(self.held);
        self.account.give_back(n);
        self.held -= n;
    }

    /// Bytes charged.
    pub(crate) fn held(&self) -> usize {
        self.held
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.account.give_back(self.held);
    }
}

/// What a served call's handler holds of its request (a body read whole): charged from when it
/// is read until the call is over, however the handler keeps it (a `Json` value, a `String`,
/// bytes handed to Python), since what it became cannot be seen.
#[derive(Debug)]
pub(crate) struct CallHold {
    account: Account,
    held: AtomicUsize,
}

impl CallHold {
    pub(crate) fn new(account: Account) -> Self {
        Self {
            account,
            held: AtomicUsize::new(0),
        }
    }

    /// A new charge for this call, to grow while reading.
    pub(crate) fn charge(&self) -> Charge {
        Charge::new(self.account.clone())
    }

    /// Keeps what `charge` holds until the call is over.
    pub(crate) fn keep(&self, mut charge: Charge) {
        let n = std::mem::take(&mut charge.held);
        self.held.fetch_add(n, Ordering::AcqRel);
    }

    /// Charges `n` bytes that already arrived, kept until the call is over.
    pub(crate) fn take(&self, n: usize) -> Result<(), OverBudget> {
        self.account.take(n)?;
        self.held.fetch_add(n, Ordering::AcqRel);
        Ok(())
    }
}

impl Drop for CallHold {
    fn drop(&mut self) {
        self.account.give_back(*self.held.get_mut());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{CallHold, Charge};
    use crate::budget::account::{Account, Scope};
    use crate::budget::keys::KeyTable;
    use crate::budget::meter::Meter;

    #[test]
    fn charges_every_budget_or_none_and_gives_back_on_drop() {
        let keys = KeyTable::new(100, 10);
        let server = Arc::new(Meter::new(150));
        let a = Account::new(Some(keys.of("a")), Some(server.clone())).with_connection(80);
        let b = Account::new(Some(keys.of("b")), Some(server.clone()));
        let mut ca = Charge::new(a.clone());
        ca.grow(70).unwrap();
        let e = ca.grow(20).unwrap_err();
        assert_eq!((e.scope, e.held, e.limit), (Scope::Connection, 70, 80));
        let mut cb = Charge::new(b.clone());
        cb.grow(80).unwrap();
        let e = cb.grow(10).unwrap_err();
        assert_eq!((e.scope, e.held), (Scope::Server, 150));
        assert_eq!(e.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        cb.shrink(30);
        let mut cb2 = Charge::new(b.clone());
        let e = cb2.grow(60).unwrap_err();
        assert_eq!((e.scope, e.held), (Scope::Key, 50));
        assert_eq!(e.status(), http::StatusCode::TOO_MANY_REQUESTS);
        assert!(e.to_string().contains("Server::per_key_memory"), "{e}");
        drop((ca, cb, cb2));
        assert_eq!(server.used(), 0);
    }

    #[test]
    fn a_call_keeps_what_it_read_until_it_is_over() {
        let server = Arc::new(Meter::new(100));
        let hold = CallHold::new(Account::new(None, Some(server.clone())));
        let mut c = hold.charge();
        c.grow(40).unwrap();
        hold.keep(c);
        hold.take(10).unwrap();
        assert_eq!(server.used(), 50);
        drop(hold);
        assert_eq!(server.used(), 0);
    }

    #[test]
    fn calls_per_key() {
        let keys = KeyTable::new(100, 2);
        let a = Account::new(Some(keys.of("a")), None);
        let t1 = a.take_call().unwrap();
        let _t2 = a.take_call().unwrap();
        let e = a.take_call().unwrap_err();
        assert_eq!((e.scope, e.held), (Scope::Key, 2));
        assert!(e.to_string().contains("2 calls in flight"), "{e}");
        drop(t1);
        assert!(a.take_call().is_ok());
        assert!(Account::default().take_call().unwrap().is_none());
    }
}
