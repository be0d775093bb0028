//! Each caller's share of a peer's call slots on the relay: one caller cannot take them all.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;

use crate::{Body, BoxError};

/// How the relay shares peers among callers and how long it waits for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayPolicy {
    /// How many relayed calls one caller (key) may have in flight to one peer at once
    /// (default 256: a quarter of the 1,024 calls a peer accepts by default). One more is
    /// answered 429, so other callers keep the rest.
    pub calls_per_caller: usize,
    /// How long a relayed call that carries no deadline of its own may wait for the peer's
    /// answer to begin (default 60 s, then 504 and the call is cancelled at the peer). A
    /// stream that has begun is not cut: its deadline is the caller's own.
    pub answer_timeout: Duration,
}

impl Default for RelayPolicy {
    fn default() -> Self {
        Self {
            calls_per_caller: 256,
            answer_timeout: Duration::from_secs(60),
        }
    }
}

type Counts = Arc<Mutex<HashMap<(String, String), usize>>>;

/// Relayed calls in flight per (peer name, caller fingerprint).
#[derive(Debug, Clone, Default)]
pub(crate) struct Shares(Counts);

impl Shares {
    /// One of `caller`'s slots for the peer `name`, or how many it holds at `max`.
    pub(crate) fn take(&self, name: &str, caller: &str, max: usize) -> Result<ShareTicket, usize> {
        let key = (name.to_owned(), caller.to_owned());
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(key.clone()).or_insert(0);
        if *n >= max {
            return Err(*n);
        }
        *n += 1;
        Ok(ShareTicket {
            counts: self.0.clone(),
            key,
        })
    }
}

/// One relayed call's place in its caller's share, given back when dropped.
#[derive(Debug)]
pub(crate) struct ShareTicket {
    counts: Counts,
    key: (String, String),
}

impl Drop for ShareTicket {
    fn drop(&mut self) {
        let mut map = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// A relayed answer's body, which keeps its call's place until it ends or is dropped.
pub(crate) struct Ticketed {
    body: Body,
    ticket: Option<ShareTicket>,
}

impl Ticketed {
    pub(crate) fn new(body: Body, ticket: ShareTicket) -> Self {
        Self {
            body,
            ticket: Some(ticket),
        }
    }
}

impl http_body::Body for Ticketed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            // The call is over at the peer.
            self.ticket = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::Shares;

    #[test]
    fn a_caller_holds_at_most_its_share_of_a_peer() {
        let s = Shares::default();
        let a1 = s.take("billing", "SHA256:a", 2).unwrap();
        let _a2 = s.take("billing", "SHA256:a", 2).unwrap();
        assert_eq!(s.take("billing", "SHA256:a", 2).unwrap_err(), 2);
        let _b = s.take("billing", "SHA256:b", 2).unwrap();
        let _other = s.take("mail", "SHA256:a", 2).unwrap();
        drop(a1);
        let _a3 = s.take("billing", "SHA256:a", 2).unwrap();
        assert_eq!(s.0.lock().unwrap().len(), 3);
    }
}
