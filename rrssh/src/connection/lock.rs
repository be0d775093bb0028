//! The connection's one lock, built so that nothing it guards is dropped, woken or handed over
//! while it is held.
//!
//! Code under the lock does not drop a call's slot, deliver an answer, end a body or wake a
//! task: it puts them in the [`Outbox`], and the guard hands the outbox over once the lock is
//! released. Dropping a body, a call or a waker may run code (a body gives its window back,
//! which takes this very lock), so none of it can re-enter the lock or run under it.
//!
//! In builds with debug assertions (the test builds) a thread that takes the lock again while
//! holding it panics at once, naming the lock, instead of deadlocking its runtime.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use tokio::sync::oneshot;

use super::body::{BodyEnd, BodyQueue};
use super::serve::Ready;
use super::{Slot, State};
use crate::Response;
use crate::client::Error;

/// Where the answer to a call we made goes, and the answer.
type Answer = (
    oneshot::Sender<Result<Response, Error>>,
    Result<Response, Error>,
);

/// What code under the lock let go of, handed over after it is released.
#[derive(Default)]
pub(super) struct Outbox {
    /// Answers for calls we made (an answer whose caller has gone is dropped here, unlocked).
    heads: Vec<Answer>,
    /// Bodies that ended, and how.
    ends: Vec<(Arc<BodyQueue>, BodyEnd)>,
    /// Tasks to wake (readers of bodies that got bytes).
    wakers: Vec<Waker>,
    /// Slots of calls that are over: their handler or pump is stopped when handed over.
    slots: Vec<Slot>,
    /// Served calls received but never started (the connection closed first).
    unstarted: Vec<Ready>,
}

impl Outbox {
    pub(super) fn answer(
        &mut self,
        to: oneshot::Sender<Result<Response, Error>>,
        answer: Result<Response, Error>,
    ) {
        self.heads.push((to, answer));
    }

    pub(super) fn end_body(&mut self, queue: Arc<BodyQueue>, end: BodyEnd) {
        self.ends.push((queue, end));
    }

    pub(super) fn wake(&mut self, waker: Waker) {
        self.wakers.push(waker);
    }

    /// A call is over: its slot goes, and its task is stopped.
    pub(super) fn forget(&mut self, slot: Slot) {
        self.slots.push(slot);
    }

    pub(super) fn drop_unstarted(&mut self, ready: &mut Vec<Ready>) {
        self.unstarted.append(ready);
    }

    fn is_empty(&self) -> bool {
        self.heads.is_empty()
            && self.ends.is_empty()
            && self.wakers.is_empty()
            && self.slots.is_empty()
            && self.unstarted.is_empty()
    }

    /// Runs with the lock released.
    fn hand_over(self) {
        let Outbox {
            heads,
            ends,
            wakers,
            slots,
            unstarted,
        } = self;
        for (to, answer) in heads {
            // A caller that gave up gets nothing; its answer (and body) is dropped here.
            let _ = to.send(answer);
        }
        for (queue, end) in ends {
            queue.finish(end);
        }
        for w in wakers {
            w.wake();
        }
        for slot in slots {
            if let Some(t) = &slot.task {
                t.abort();
            }
            drop(slot);
        }
        drop(unstarted);
    }
}

/// The lock around a connection's [`State`].
pub(super) struct StateLock(Mutex<State>);

impl StateLock {
    pub(super) fn new(state: State) -> Self {
        Self(Mutex::new(state))
    }

    pub(super) fn lock(&self) -> StateGuard<'_> {
        let key = reentry::enter(self);
        StateGuard {
            guard: Some(self.0.lock().unwrap_or_else(|e| e.into_inner())),
            key: Some(key),
        }
    }
}

/// The lock held; dereferences to the [`State`]. Dropping it releases the lock, then hands the
/// state's [`Outbox`] over.
pub(super) struct StateGuard<'a> {
    guard: Option<MutexGuard<'a, State>>,
    /// This thread's hold on the lock, let go with it.
    key: Option<reentry::Key>,
}

impl Deref for StateGuard<'_> {
    type Target = State;

    fn deref(&self) -> &State {
        self.guard.as_ref().expect("held until dropped")
    }
}

impl DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        self.guard.as_mut().expect("held until dropped")
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        let Some(mut guard) = self.guard.take() else {
            return;
        };
        let outbox = (!guard.outbox.is_empty()).then(|| std::mem::take(&mut guard.outbox));
        drop(guard);
        drop(self.key.take());
        if let Some(outbox) = outbox {
            outbox.hand_over();
        }
    }
}

/// Catches a thread taking the lock it already holds (debug assertions only).
#[cfg(debug_assertions)]
mod reentry {
    use std::cell::RefCell;

    thread_local! {
        /// The locks this thread holds, by address.
        static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    }

    /// This thread holds the lock at this address until the key is dropped.
    pub(super) struct Key(usize);

    pub(super) fn enter<T>(lock: &T) -> Key {
        let addr = std::ptr::from_ref(lock) as usize;
        HELD.with_borrow_mut(|held| {
            assert!(
                !held.contains(&addr),
                "a connection's lock was taken again by the thread that holds it \
                 (something dropped or woken under the lock re-entered it)"
            );
            held.push(addr);
        });
        Key(addr)
    }

    impl Drop for Key {
        fn drop(&mut self) {
            HELD.with_borrow_mut(|held| held.retain(|a| *a != self.0));
        }
    }
}

#[cfg(not(debug_assertions))]
mod reentry {
    pub(super) struct Key;

    pub(super) fn enter<T>(_: &T) -> Key {
        Key
    }
}

#[cfg(all(test, debug_assertions))]
mod tests {
    #[test]
    fn taking_a_held_lock_again_on_the_same_thread_panics_naming_it() {
        let lock = 0u8;
        let other = 0u8;
        let held = super::reentry::enter(&lock);
        // Another lock may be taken meanwhile.
        drop(super::reentry::enter(&other));
        let again = std::panic::catch_unwind(|| super::reentry::enter(&lock));
        let msg = again
            .err()
            .and_then(|e| e.downcast_ref::<&str>().map(|s| s.to_string()));
        assert!(msg.is_some_and(|m| m.contains("taken again")));
        drop(held);
        // Released: taking it again is fine.
        drop(super::reentry::enter(&lock));
    }
}
