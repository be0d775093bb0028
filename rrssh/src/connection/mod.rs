//! The driver of one rrssh connection: runs the sans-IO protocol core
//! ([`proto::Conn`](crate::proto::Conn)) over any `AsyncRead + AsyncWrite` carrier, serves the
//! peer's calls with a [`Service`](tower_service::Service), and is itself a [`Service`](tower_service::Service) for calls to the peer.
//!
//! Two tasks per connection: the reader feeds the core and hands events to the calls; the
//! writer writes what the core framed. Calls, bodies and handlers talk to the core under one
//! short lock. Everything the connection holds is freed when it closes, however it closes.
//!
//! A call the peer makes runs on the reader's task until its handler first waits (most answer
//! at once, and so cost no task of their own); from then on it is a task of its own. A handler
//! that blocks its thread before waiting (heavy computation, synchronous I/O) therefore holds
//! up its connection's other calls meanwhile: such work belongs in
//! `tokio::task::spawn_blocking`, as in any async server.

mod body;
mod call;
mod events;
mod io;
mod lock;
mod serve;

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::AbortHandle;
use tower::util::BoxCloneSyncService;

use self::body::{BodyEnd, BodyQueue};
pub use self::call::ResponseFuture;
use self::lock::{Outbox, StateGuard, StateLock};
use crate::client::Error;
use crate::proto::frame::goaway;
use crate::proto::{CallId, Conn, Hello, Limits, Role};
use crate::{Request, Response};

/// What a connection serves to its peer: any cloneable service from requests to responses (a
/// [`Router`](crate::Router) is one).
pub type Served = BoxCloneSyncService<Request, Response, Infallible>;

/// How to run a connection.
#[derive(Clone)]
#[non_exhaustive]
pub struct ConnectionConfig {
    /// Which side this end is.
    pub role: Role,
    /// Limits (what we accept; the peer's HELLO says what it accepts).
    pub limits: Limits,
    /// What is served to the peer; `None` answers every call `RESET` 404.
    pub service: Option<Served>,
    /// Put into the extensions of every call the peer makes: the carrier sets the caller's
    /// verified identity here (a [`Peer`](crate::Peer)).
    pub extensions: http::Extensions,
    /// The service name announced in HELLO (reverse mode).
    pub service_name: Option<String>,
    /// How long to wait for the peer's HELLO.
    pub hello_timeout: Duration,
    /// The budgets the peer is charged to (its key's, the server's); see [`budget`](crate::budget).
    pub(crate) account: crate::budget::Account,
}

impl ConnectionConfig {
    /// A configuration for this role with default limits and nothing served.
    pub fn new(role: Role) -> Self {
        Self {
            role,
            limits: Limits::default(),
            service: None,
            extensions: http::Extensions::new(),
            service_name: None,
            hello_timeout: Duration::from_secs(10),
            account: crate::budget::Account::default(),
        }
    }

    /// Serves this service (a [`Router`](crate::Router), or any layered service) to the peer.
    pub fn serve<S>(mut self, service: S) -> Self
    where
        S: tower_service::Service<Request, Response = Response, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.service = Some(BoxCloneSyncService::new(service));
        self
    }
}

impl ConnectionConfig {
    /// Puts a value (the caller's verified identity) into every request the peer makes.
    pub fn extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.insert(value);
        self
    }
}

impl fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionConfig")
            .field("role", &self.role)
            .field("limits", &self.limits)
            .field("serves", &self.service.is_some())
            .field("service_name", &self.service_name)
            .finish_non_exhaustive()
    }
}

/// Why a connection could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The carrier failed or closed during the handshake.
    #[error("carrier closed during the handshake: {0}")]
    Io(String),
    /// The peer sent something other than a valid HELLO (it was told why with `GOAWAY`).
    #[error("bad HELLO from the peer: {0}")]
    BadHello(String),
    /// The peer did not say HELLO in time.
    #[error("the peer did not complete the handshake in time")]
    Timeout,
}

/// The driver's side of one call.
#[derive(Default)]
struct Slot {
    /// A call we made, waiting for its answer's head.
    head: Option<oneshot::Sender<Result<Response, Error>>>,
    /// The body being received (request body of a served call, response body of ours).
    body: Option<Arc<BodyQueue>>,
    /// Woken when the call may send more.
    capacity: Arc<Notify>,
    /// The handler of a served call, or the request-body pump of ours.
    task: Option<AbortHandle>,
    /// A call we made (else one the peer made).
    outgoing: bool,
    /// A call we made: when the caller gives up on it.
    deadline: Option<tokio::time::Instant>,
    /// A served call: one of its key's calls in flight.
    #[expect(dead_code, reason = "held for what its drop gives back")]
    ticket: Option<crate::budget::CallTicket>,
    /// A served call whose answer is a stream (NDJSON).
    ndjson: bool,
}

struct State {
    conn: Conn,
    slots: HashMap<CallId, Slot>,
    /// Calls waiting for connection window or output space.
    blocked: BTreeSet<CallId>,
    /// Served calls started by the last input, to run once the lock is released.
    ready: Vec<serve::Ready>,
    /// What code under the lock let go of, handed over once it is released.
    outbox: Outbox,
}

pub(crate) struct Shared {
    state: StateLock,
    peer_hello: Hello,
    extensions: http::Extensions,
    service: Option<Served>,
    /// Output is waiting for the writer.
    writer_wake: Notify,
    /// The reader may process input again.
    reader_wake: Notify,
    closed_tx: watch::Sender<Option<String>>,
    goaway_tx: watch::Sender<Option<String>>,
    /// Woken whenever a call finishes.
    call_done: Notify,
    writer_done: watch::Sender<bool>,
    /// What the peer makes this end hold is charged here: this connection's budget, its
    /// key's and the server's.
    account: crate::budget::Account,
    /// How long a served call's body may stay silent while its handler waits.
    body_idle: std::time::Duration,
    /// Whether there is a peer at all.
    #[cfg_attr(not(feature = "ssh"), allow(dead_code))]
    attached: bool,
}

impl Shared {
    fn lock(&self) -> StateGuard<'_> {
        self.state.lock()
    }

    /// Runs `f` on the core, then wakes the writer if it framed anything.
    fn with_conn<R>(&self, f: impl FnOnce(&mut Conn) -> R) -> R {
        let mut st = self.lock();
        let r = f(&mut st.conn);
        let wake = st.conn.pending_output() > 0;
        drop(st);
        if wake {
            self.writer_wake.notify_one();
        }
        r
    }

    /// The application took `n` body bytes of a call. Wakes the reader only if it waits for
    /// exactly that (a peer without a connection window, over it).
    fn consume(&self, call: CallId, n: usize) {
        let was_paused = self.with_conn(|c| {
            let paused = c.is_open() && !c.wants_input() && !c.is_output_blocked();
            c.consume(call, n);
            paused
        });
        if was_paused {
            self.reader_wake.notify_one();
        }
    }

    /// Abandons a call we made: `CANCEL`, and it is forgotten.
    fn cancel_outgoing(&self, call: CallId) {
        let slot = {
            let mut st = self.lock();
            st.conn.cancel(call);
            st.slots.remove(&call)
        };
        self.writer_wake.notify_one();
        if let Some(s) = slot
            && let Some(t) = s.task
        {
            t.abort();
        }
        self.call_done.notify_waiters();
    }

    /// Forgets a served call whose handler is done. An answer its handler left unfinished
    /// (a body whose sending stopped) is reset with 500: no call outlives its handler.
    fn finish_served(&self, call: CallId) {
        let removed = {
            let mut st = self.lock();
            if st.conn.is_sending(call) {
                let _ = st
                    .conn
                    .send_reset(call, 500, "the answer stopped before its end");
                self.writer_wake.notify_one();
            }
            st.slots.remove(&call)
        };
        // Dropped unlocked.
        drop(removed);
        self.call_done.notify_waiters();
    }

    /// Closes with a final `GOAWAY`, fails every call in flight.
    fn close(self: &Arc<Self>, code: u16, reason: &str) {
        let mut st = self.lock();
        st.conn.close(code, reason);
        self.dispatch(&mut st);
        drop(st);
        self.writer_wake.notify_one();
    }

    /// Every call is lost: answers, bodies and slots go to the outbox, and so do the served
    /// calls that were received but not started (their bodies give window back, under a lock
    /// of their own).
    fn on_closed(&self, st: &mut State, reason: &str) {
        let State {
            slots,
            outbox,
            ready,
            blocked,
            ..
        } = st;
        for (_, mut slot) in slots.drain() {
            if let Some(h) = slot.head.take() {
                outbox.answer(h, Err(Error::Unavailable(reason.to_owned())));
            }
            if let Some(b) = slot.body.take() {
                outbox.end_body(b, BodyEnd::Lost(reason.to_owned()));
            }
            slot.capacity.notify_one();
            outbox.forget(slot);
        }
        outbox.drop_unstarted(ready);
        blocked.clear();
        self.call_done.notify_waiters();
        self.reader_wake.notify_one();
        self.closed_tx.send_replace(Some(reason.to_owned()));
    }
}

/// A running connection; cloning gives another handle to it.
///
/// As a [`Service`](tower_service::Service) it sends calls to the peer. Dropping every handle
/// does not close the connection while the peer keeps it open (it may still be serving calls);
/// use [`close`](Self::close).
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("peer_hello", &self.shared.peer_hello)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Starts a connection on a carrier: exchanges HELLO, then runs the reader and writer tasks.
    /// A peer whose HELLO is refused (malformed, another version, too late) is told why with a
    /// `GOAWAY` before the carrier closes.
    pub async fn start<IO>(io: IO, config: ConnectionConfig) -> Result<Connection, HandshakeError>
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, wr) = tokio::io::split(io);
        let (body_buffer, body_idle) = (
            config.limits.body_buffer as usize,
            config.limits.body_idle_timeout,
        );
        let conn = Conn::new(config.role, config.limits, config.service_name.clone());
        let (conn, rd, rbuf, wr) = io::handshake(conn, rd, wr, config.hello_timeout).await?;
        let peer_hello = conn.peer_hello().cloned().ok_or(HandshakeError::Timeout)?;
        let shared = Arc::new(Shared {
            state: StateLock::new(State {
                ready: Vec::new(),
                conn,
                slots: HashMap::new(),
                blocked: BTreeSet::new(),
                outbox: Outbox::default(),
            }),
            peer_hello,
            extensions: config.extensions,
            service: config.service,
            writer_wake: Notify::new(),
            reader_wake: Notify::new(),
            closed_tx: watch::channel(None).0,
            goaway_tx: watch::channel(None).0,
            call_done: Notify::new(),
            writer_done: watch::channel(false).0,
            account: config.account.with_connection(body_buffer),
            body_idle,
            attached: true,
        });
        // Frames that came in with the HELLO are handled first.
        let ready = {
            let mut st = shared.lock();
            shared.dispatch(&mut st);
            std::mem::take(&mut st.ready)
        };
        serve::run_ready(&shared, ready);
        let w = shared.clone();
        // The reader and writer log in the span the connection was started in (the server's
        // `connection` span: its id, carrier, user and key).
        let span = tracing::Span::current();
        let writing = async move {
            io::write_loop(wr, &w).await;
            w.writer_done.send_replace(true);
        };
        tokio::spawn(tracing::Instrument::instrument(writing, span.clone()));
        tokio::spawn(tracing::Instrument::instrument(
            io::read_loop(rd, rbuf, shared.clone()),
            span,
        ));
        shared.writer_wake.notify_one();
        Ok(Connection { shared })
    }

    #[cfg_attr(not(feature = "ssh"), allow(dead_code))]
    /// A connection with no peer, closed from the start with `reason`: every call fails with
    /// [`Error::Unavailable`] saying it (a client that uses SSH only).
    pub(crate) fn unattached(reason: &str) -> Connection {
        let limits = Limits::default();
        let mut conn = Conn::new(Role::Initiator, limits, None);
        conn.close(goaway::NORMAL, reason);
        let shared = Arc::new(Shared {
            state: StateLock::new(State {
                ready: Vec::new(),
                conn,
                slots: HashMap::new(),
                blocked: BTreeSet::new(),
                outbox: Outbox::default(),
            }),
            peer_hello: Hello::new(&limits, None),
            extensions: http::Extensions::new(),
            service: None,
            writer_wake: Notify::new(),
            reader_wake: Notify::new(),
            closed_tx: watch::channel(Some(reason.to_owned())).0,
            goaway_tx: watch::channel(None).0,
            call_done: Notify::new(),
            writer_done: watch::channel(true).0,
            account: crate::budget::Account::default(),
            body_idle: limits.body_idle_timeout,
            attached: false,
        });
        Connection { shared }
    }

    #[cfg_attr(not(feature = "ssh"), allow(dead_code))]
    /// Whether the connection has a peer (it is not [`unattached`](Self::unattached)).
    pub(crate) fn is_attached(&self) -> bool {
        self.shared.attached
    }

    /// What the peer said in its HELLO (its limits and announced service name).
    pub fn peer_hello(&self) -> &Hello {
        &self.shared.peer_hello
    }

    /// Whether the connection has closed, and why.
    pub fn closed_reason(&self) -> Option<String> {
        self.shared.closed_tx.borrow().clone()
    }

    /// Waits until the connection closes; returns why.
    pub fn closed(&self) -> impl Future<Output = String> + Send + 'static {
        let mut rx = self.shared.closed_tx.subscribe();
        async move {
            match rx.wait_for(Option::is_some).await {
                Ok(r) => r.clone().unwrap_or_default(),
                Err(_) => "connection dropped".to_owned(),
            }
        }
    }

    /// Closes the connection: says GOAWAY, fails calls in flight with
    /// [`Error::Unavailable`], and stops serving.
    pub fn close(&self, reason: &str) {
        self.close_with(goaway::NORMAL, reason);
    }

    /// Closes the connection with a `GOAWAY` of this code (see [`goaway`]) and reason, which
    /// the peer reports as why the connection ended.
    pub fn close_with(&self, code: u16, reason: &str) {
        self.shared.close(code, reason);
    }

    /// Starts a graceful close: says GOAWAY (code 0, with `reason`), after which new calls from
    /// the peer are refused with 503 while the calls already started run to the end. Calls to
    /// the peer are not affected. Follow with [`drained`](Self::drained) and
    /// [`close`](Self::close).
    pub fn go_away(&self, reason: &str) {
        self.shared.with_conn(|c| c.go_away(reason));
    }

    /// Waits until no call is in flight in either direction (or the connection closed).
    pub async fn drained(&self) {
        loop {
            let notified = self.shared.call_done.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            {
                let st = self.shared.lock();
                if (st.slots.is_empty() && st.conn.calls_in_flight() == 0) || !st.conn.is_open() {
                    return;
                }
            }
            // Calls end in several places; a short tick covers any missed wake-up.
            let _ = tokio::time::timeout(Duration::from_millis(10), notified).await;
        }
    }

    /// Waits until the connection is closed and everything queued before the close (such as a
    /// final `GOAWAY`) has been handed to the carrier.
    pub async fn flushed(&self) {
        let mut rx = self.shared.writer_done.subscribe();
        let _ = rx.wait_for(|done| *done).await;
    }

    /// Waits until the peer says GOAWAY (it takes no new calls); returns its message. Never
    /// resolves if the connection closes without one.
    pub fn going_away(&self) -> impl Future<Output = String> + Send + 'static {
        let mut rx = self.shared.goaway_tx.subscribe();
        async move {
            let got = rx
                .wait_for(Option::is_some)
                .await
                .map(|r| r.clone().unwrap_or_default());
            match got {
                Ok(r) => r,
                Err(_) => std::future::pending().await,
            }
        }
    }

    /// Number of calls in flight (both directions).
    pub fn calls_in_flight(&self) -> usize {
        let st = self.shared.lock();
        st.slots.len().max(st.conn.calls_in_flight())
    }

    /// Body bytes received and not yet consumed, over all calls (bounded by the connection
    /// window).
    pub fn buffered(&self) -> u64 {
        self.shared.lock().conn.buffered()
    }
}
