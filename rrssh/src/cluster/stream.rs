//! Answers larger than one message between hubs: after the head (which carries the first
//! chunk), the serving hub publishes chunks on `rrssh.stream.CALL`, at most [`WINDOW`] ahead of
//! the credit the calling hub grants on `rrssh.credit.CALL` as its caller reads them. Dropping
//! the body cancels the call on the serving hub; a serving hub that goes away mid-stream is
//! `Unavailable`, a deadline that passes is `Timeout`: never a hang, never a silent truncation.
//!
//! Chunks, credits and cancels are sealed (`signing.rs`) like the call, for their subject (which
//! names the call and the direction), by the hub at the other end of the call: a chunk signed by
//! anyone else, or for another call, is dropped and the wait goes on; a chunk's sequence number
//! is signed with it, so one replayed within the call is one already read and is dropped too.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::HeaderMap;
use http_body::Frame;
use serde::{Deserialize, Serialize};

use super::signing::{Seals, dropped};
use super::wire::{decode, encode, header_map, headers_of};
use crate::client::Error;
use crate::{Body, BoxError};

/// The most body bytes in one chunk.
pub(super) const CHUNK: usize = 64 * 1024;
/// Chunks in flight beyond the credit granted (1 MiB).
pub(super) const WINDOW: u64 = 16;
/// How long a serving hub waits for credit before it gives the call up.
const CREDIT_WAIT: Duration = Duration::from_secs(30);

/// Where an answer's chunks go.
pub(super) fn stream_subject(call: &str) -> String {
    format!("rrssh.stream.{call}")
}

/// Where the calling hub grants credit for them.
pub(super) fn credit_subject(call: &str) -> String {
    format!("rrssh.credit.{call}")
}

/// Where a request body's chunks go (an upload).
pub(super) fn upload_subject(call: &str) -> String {
    format!("rrssh.upload.{call}")
}

/// Where the serving hub grants credit for them; its first grant says it is listening.
pub(super) fn upload_credit_subject(call: &str) -> String {
    format!("rrssh.upcredit.{call}")
}

/// This hub's seals, and the hub at the other end of the call (who must have signed what
/// arrives).
pub(super) type Link = (Arc<Seals>, String);

/// What `msg` says if the other end of the call signed it for its subject.
fn checked(link: &Link, msg: &async_nats::Message, what: &str) -> Option<Bytes> {
    match link
        .0
        .open(msg.subject.as_str(), "", &msg.payload, Some(&link.1), false)
    {
        Ok(o) => Some(o.payload),
        Err(why) => {
            dropped(what, msg.subject.as_str(), &why);
            None
        }
    }
}

/// A credit (or a cancel) as it says: `None` for a cancel or nonsense, else the grant.
fn grant(payload: &[u8]) -> Option<u64> {
    match std::str::from_utf8(payload).ok() {
        Some("cancel") | None => None,
        Some(n) => Some(n.parse().unwrap_or(0)),
    }
}

/// A chunk's head.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ChunkHead {
    pub(super) seq: u64,
    /// The last chunk: the body ended (with these trailers, if any).
    #[serde(default)]
    pub(super) end: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) trailers: Option<Vec<(String, String)>>,
    /// The body failed on the serving hub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) error: Option<String>,
}

/// A body cut into chunks of at most [`CHUNK`] bytes, whatever the size of its frames.
pub(super) struct Chunker {
    body: Body,
    left: Bytes,
}

impl Chunker {
    pub(super) fn new(body: Body) -> Self {
        Self {
            body,
            left: Bytes::new(),
        }
    }

    /// The next chunk: its data, the trailers if the body ended with some, and whether it
    /// ended.
    pub(super) async fn next(&mut self) -> Result<(Vec<u8>, Option<HeaderMap>, bool), String> {
        let mut data = Vec::new();
        loop {
            if !self.left.is_empty() {
                let n = self.left.len().min(CHUNK - data.len());
                data.extend_from_slice(&self.left.split_to(n));
            }
            if data.len() >= CHUNK {
                return Ok((data, None, false));
            }
            match self.body.frame().await {
                None => return Ok((data, None, true)),
                Some(Err(e)) => return Err(e.to_string()),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(d) => self.left = d,
                    // Trailers end a body.
                    Err(frame) => return Ok((data, frame.into_trailers().ok(), true)),
                },
            }
        }
    }
}

/// The sending side: publishes the rest of `body` as chunks on `subject` from `seq` 1, within
/// the credit granted on `credits` (subscribed before the other side can grant any). With
/// `wait_first`, nothing is sent before the first grant (the receiver says it listens).
pub(super) async fn pump(
    client: async_nats::Client,
    link: Link,
    subject: String,
    mut body: Chunker,
    mut credits: async_nats::Subscriber,
    wait_first: bool,
) {
    let mut granted: u64 = 0;
    let mut started = !wait_first;
    let mut seq: u64 = 1;
    loop {
        while !started || seq > granted + WINDOW {
            match tokio::time::timeout(CREDIT_WAIT, credits.next()).await {
                Ok(Some(msg)) => {
                    let Some(payload) = checked(&link, &msg, "a credit") else {
                        continue;
                    };
                    let Some(n) = grant(&payload) else { return };
                    started = true;
                    granted = granted.max(n);
                }
                // No reader for too long, or the subscription is gone: give the call up
                // (dropping the body cancels it on the service).
                _ => return,
            }
        }
        // Take any credit (or a cancel) that came in meanwhile.
        while let Some(Some(msg)) = futures_util::FutureExt::now_or_never(credits.next()) {
            let Some(payload) = checked(&link, &msg, "a credit") else {
                continue;
            };
            let Some(n) = grant(&payload) else { return };
            granted = granted.max(n);
        }
        let (head, data) = match body.next().await {
            Ok((data, trailers, end)) => (
                ChunkHead {
                    seq,
                    end,
                    trailers: trailers.as_ref().map(headers_of),
                    error: None,
                },
                data,
            ),
            Err(e) => (
                ChunkHead {
                    seq,
                    end: true,
                    trailers: None,
                    error: Some(e),
                },
                Vec::new(),
            ),
        };
        let end = head.end;
        let sealed = link.0.seal(&subject, "", &encode(&head, &data));
        if client.publish(subject.clone(), sealed).await.is_err() {
            return;
        }
        if end {
            let _ = client.flush().await;
            return;
        }
        seq += 1;
    }
}

/// The receiving side: a body whose first chunk came with its head and whose rest arrives on
/// `chunks`, granting credit on `credit`. `alive` says whether the sending hub is still there.
pub(super) fn receive(
    client: async_nats::Client,
    link: Link,
    credit: String,
    first: Bytes,
    chunks: async_nats::Subscriber,
    deadline: tokio::time::Instant,
    alive: Arc<dyn Fn() -> bool + Send + Sync>,
) -> Body {
    struct State {
        client: async_nats::Client,
        link: Link,
        credit: String,
        chunks: async_nats::Subscriber,
        next: u64,
        done: bool,
        pending_trailers: Option<HeaderMap>,
        deadline: tokio::time::Instant,
        alive: Arc<dyn Fn() -> bool + Send + Sync>,
    }
    impl Drop for State {
        fn drop(&mut self) {
            if !self.done {
                let (client, subject) = (self.client.clone(), self.credit.clone());
                let cancel = self.link.0.seal(&subject, "", b"cancel");
                tokio::spawn(async move {
                    let _ = client.publish(subject, cancel).await;
                });
            }
        }
    }
    let state = State {
        client,
        link,
        credit,
        chunks,
        next: 1,
        done: false,
        pending_trailers: None,
        deadline,
        alive,
    };
    let first =
        futures_util::stream::once(async move { Ok::<Frame<Bytes>, BoxError>(Frame::data(first)) });
    let rest = futures_util::stream::unfold(state, |mut st| async move {
        if let Some(t) = st.pending_trailers.take() {
            return Some((Ok(Frame::trailers(t)), st));
        }
        if st.done {
            return None;
        }
        let msg = loop {
            let wait = tokio::time::timeout(Duration::from_secs(1), st.chunks.next());
            match tokio::time::timeout_at(st.deadline, wait).await {
                Err(_) => {
                    st.done = true;
                    let e: BoxError = Box::new(Error::Timeout);
                    return Some((Err(e), st));
                }
                Ok(Ok(Some(m))) => {
                    let Some(payload) = checked(&st.link, &m, "a chunk") else {
                        continue;
                    };
                    match decode::<ChunkHead>(&payload) {
                        // One already read, sent again: not the hub's doing.
                        Ok((h, _)) if h.seq < st.next => {}
                        parsed => break parsed,
                    }
                }
                Ok(Ok(None)) => {
                    st.done = true;
                    let e: BoxError = Box::new(Error::Unavailable(
                        "the cluster connection was lost mid-stream".into(),
                    ));
                    return Some((Err(e), st));
                }
                Ok(Err(_)) if !(st.alive)() => {
                    st.done = true;
                    let e: BoxError = Box::new(Error::Unavailable(
                        "the hub serving the stream went away".into(),
                    ));
                    return Some((Err(e), st));
                }
                Ok(Err(_)) => {}
            }
        };
        let (head, data) = match msg {
            Ok(x) if x.0.seq == st.next => x,
            Ok(x) => {
                st.done = true;
                let e: BoxError = Box::new(Error::Unavailable(format!(
                    "chunk {} arrived where {} was due",
                    x.0.seq, st.next
                )));
                return Some((Err(e), st));
            }
            Err(e) => {
                st.done = true;
                return Some((Err(Box::new(Error::Unavailable(e)) as BoxError), st));
            }
        };
        if let Some(e) = head.error {
            st.done = true;
            return Some((Err(Box::new(Error::Unavailable(e)) as BoxError), st));
        }
        st.next += 1;
        if head.end {
            st.done = true;
            st.pending_trailers = head.trailers.as_deref().map(header_map);
        } else if st.next % 4 == 0 {
            // Credit: chunks read so far.
            let _ = st
                .client
                .publish(
                    st.credit.clone(),
                    st.link
                        .0
                        .seal(&st.credit, "", (st.next - 1).to_string().as_bytes()),
                )
                .await;
        }
        Some((Ok(Frame::data(data)), st))
    });
    Body::from_frames(first.chain(rest))
}
