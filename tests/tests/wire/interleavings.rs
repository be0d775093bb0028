//! The engine under seeded interleavings. Two connections talk over a simulated carrier that
//! hands bytes over in chunk sizes, with buffer sizes and with pauses a seed chooses, so the
//! tasks of both ends (readers, writers, handlers, body pumps) run in the orders those pauses
//! make. Every seed must end with every answer whole and nothing left in flight; a seed that
//! stalls or breaks names itself, and `RRSSH_SEED=N` reruns just that one.
//!
//! Seeds run on a current-thread runtime (the interleaving is the seed's) and on a runtime of
//! two workers (the seed's pauses, plus true parallelism between the ends' tasks). The
//! connection lock's re-entry check is active in these builds: a drop under the lock that
//! takes it again panics and names the seed rather than hanging.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::StreamExt;
use http_body_util::BodyExt;
use rrssh::client::CallExt;
use rrssh::connection::{Connection, ConnectionConfig};
use rrssh::proto::Role;
use rrssh::routing::{get, post, stream};
use rrssh::{Body, Bytes, JsonStream, Path, Router};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

/// A small, seedable generator (xorshift64*): the same seed, the same choices.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }

    /// True one time in `n`.
    pub(crate) fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }
}

/// One end of a simulated carrier: reads and writes go through in seeded sizes, and now and
/// then a call yields (wakes itself and returns `Pending`) so other tasks run first.
pub(crate) struct Jittery {
    inner: DuplexStream,
    rng: Rng,
    scratch: Vec<u8>,
}

impl Jittery {
    /// Both ends of a carrier whose buffer size the seed chooses.
    pub(crate) fn pair(seed: u64) -> (Jittery, Jittery) {
        let mut rng = Rng::new(seed);
        let (a, b) = tokio::io::duplex(rng.range(512, 256 * 1024));
        let end = |inner, seed| Jittery {
            inner,
            rng: Rng::new(seed),
            scratch: Vec::new(),
        };
        (end(a, rng.next()), end(b, rng.next()))
    }

    fn pause(&mut self, cx: &mut Context<'_>) -> bool {
        if self.rng.one_in(4) {
            cx.waker().wake_by_ref();
            return true;
        }
        false
    }

    fn size(&mut self) -> usize {
        match self.rng.range(0, 3) {
            0 => self.rng.range(1, 16),
            1 => self.rng.range(1, 1500),
            _ => self.rng.range(1, 64 * 1024),
        }
    }
}

impl AsyncRead for Jittery {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if me.pause(cx) {
            return Poll::Pending;
        }
        let n = me.size().min(buf.remaining());
        me.scratch.resize(n, 0);
        let mut part = ReadBuf::new(&mut me.scratch[..n]);
        match Pin::new(&mut me.inner).poll_read(cx, &mut part) {
            Poll::Ready(Ok(())) => {
                buf.put_slice(part.filled());
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl AsyncWrite for Jittery {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if me.pause(cx) {
            return Poll::Pending;
        }
        let n = me.size().min(buf.len());
        Pin::new(&mut me.inner).poll_write(cx, &buf[..n])
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The bytes `/big/{n}` answers: `n` bytes of a pattern.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn app() -> Router {
    Router::new()
        .route(
            "/big/{n}",
            get(|Path(n): Path<usize>| async move { Body::from_bytes(pattern(n)) }),
        )
        .route("/echo", post(|b: Bytes| async move { b }))
        .route(
            "/items/{n}",
            stream(|Path(n): Path<u32>| async move {
                JsonStream::new(futures_util::stream::iter(0..n).then(|i| async move {
                    if i % 64 == 0 {
                        tokio::task::yield_now().await;
                    }
                    format!("{i:0>200}")
                }))
            }),
        )
}

/// Whether the answer's body is `pattern(n)`, read whole.
async fn body_is(
    res: Result<rrssh::Response, rrssh::client::Error>,
    n: usize,
) -> Result<(), String> {
    let res = res.map_err(|e| e.to_string())?;
    let body = res.into_body().collect().await.map_err(|e| e.to_string())?;
    if body.to_bytes() == pattern(n) {
        Ok(())
    } else {
        Err(format!("not the {n} bytes expected"))
    }
}

/// Windows small enough that every answer waits for grants, on both windows, many times.
fn small_windows(role: Role) -> ConnectionConfig {
    let mut c = ConnectionConfig::new(role).serve(app());
    c.limits.connection_window = 64 * 1024;
    c.limits.initial_window = 32 * 1024;
    c.limits.max_data_chunk = 16 * 1024;
    c
}

/// Several calls at once over one seeded carrier: large answers, a request body echoed back,
/// streams; each answer is checked whole.
async fn calls_under_small_windows(seed: u64) -> Result<(), String> {
    let (x, y) = Jittery::pair(seed);
    let (a, b) = tokio::join!(
        Connection::start(x, small_windows(Role::Initiator)),
        Connection::start(y, small_windows(Role::Acceptor)),
    );
    let (a, b) = (a.map_err(|e| e.to_string())?, b.map_err(|e| e.to_string())?);
    let mut rng = Rng::new(seed ^ 0xA5A5);
    let mut calls = Vec::new();
    for i in 0..6 {
        let (a, b) = (a.clone(), b.clone());
        let n = rng.range(1, 200 * 1024);
        // Calls go both ways: each end serves and calls.
        let to = if i % 2 == 0 { a } else { b };
        calls.push(tokio::spawn(async move {
            match i % 3 {
                0 => body_is(to.get(&format!("/big/{n}")).send().await, n).await,
                1 => body_is(to.post("/echo").body(pattern(n)).send().await, n).await,
                _ => {
                    let count = (n / 1024) as u32;
                    let items: Vec<String> = to
                        .stream(&format!("/items/{count}"))
                        .items::<String>()
                        .await
                        .map_err(|e| e.to_string())?
                        .map(|r| r.map_err(|e| e.to_string()))
                        .collect::<Vec<_>>()
                        .await
                        .into_iter()
                        .collect::<Result<_, _>>()?;
                    (items.len() == count as usize)
                        .then_some(())
                        .ok_or("short stream".to_owned())
                }
            }
        }));
    }
    for c in calls {
        c.await.map_err(|e| format!("call panicked: {e}"))??;
    }
    // Nothing is left in flight on either end once every answer was read.
    for _ in 0..200 {
        if a.calls_in_flight() == 0 && b.calls_in_flight() == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err(format!(
        "calls left in flight: {} and {}",
        a.calls_in_flight(),
        b.calls_in_flight()
    ))
}

/// The seeds to run: `RRSSH_SEED` alone if set, else `count` from `first`.
fn seeds(first: u64, count: u64) -> Vec<u64> {
    match std::env::var("RRSSH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(s) => vec![s],
        None => (first..first + count).collect(),
    }
}

/// Runs `scenario` once per seed on a fresh runtime; fails naming the first seed that stalled
/// (did not finish in `limit`), panicked or went wrong.
fn sweep<F, Fut>(name: &str, seeds: Vec<u64>, workers: usize, limit: Duration, scenario: F)
where
    F: Fn(u64) -> Fut + Send + Sync + Copy + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    for seed in seeds {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = if workers == 1 {
                tokio::runtime::Builder::new_current_thread()
            } else {
                let mut b = tokio::runtime::Builder::new_multi_thread();
                b.worker_threads(workers);
                b
            }
            .enable_all()
            .build()
            .unwrap();
            let out = rt.block_on(async move {
                tokio::time::timeout(limit, tokio::spawn(scenario(seed)))
                    .await
                    .map_err(|_| "stalled".to_owned())
                    .and_then(|r| r.map_err(|e| format!("panicked: {e}"))?)
            });
            rt.shutdown_background();
            let _ = tx.send(out);
        });
        match rx.recv_timeout(limit + Duration::from_secs(5)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!(
                "{name}: seed {seed} ({workers} worker(s)): {e}; rerun with RRSSH_SEED={seed}"
            ),
            Err(_) => panic!(
                "{name}: seed {seed} ({workers} worker(s)): the runtime is stuck (a deadlock); rerun with RRSSH_SEED={seed}"
            ),
        }
    }
}

#[test]
fn small_windows_every_answer_arrives_whole_under_seeded_interleavings() {
    sweep(
        "small windows",
        seeds(0, 2000),
        1,
        Duration::from_secs(20),
        calls_under_small_windows,
    );
}

#[test]
fn small_windows_every_answer_arrives_whole_on_two_workers() {
    sweep(
        "small windows",
        seeds(10_000, 1000),
        2,
        Duration::from_secs(20),
        calls_under_small_windows,
    );
}

/// A violation (DATA past the connection window) in the same bytes as calls received but not
/// started, with body bytes buffered, split into reads as the seed says: that connection
/// closes with GOAWAY 6, and the same runtime goes on serving.
async fn violation_with_unstarted_calls(seed: u64) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut raw, end) = Jittery::pair(seed);
    // Handlers that hold their request bodies unread: the bytes stay counted against the
    // connection window however the reads are cut, so the overrun is certain.
    let holds = tower::service_fn(|req: rrssh::Request| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(req);
        Ok::<_, std::convert::Infallible>(rrssh::Response::new(Body::empty()))
    });
    let mut config = ConnectionConfig::new(Role::Acceptor).serve(holds);
    config.limits.connection_window = 256;
    let server = tokio::spawn(Connection::start(end, config));
    let hello = br#"{"version":1,"max_frame":1048576,"window":1048576,"max_calls":8,"conn_window":1048576}"#;
    let mut bytes = super::rules::frame(1, 0, 0, hello);
    for call in [1u32, 3, 5] {
        bytes.extend(super::raw::request(call, "POST", "/echo", false));
        bytes.extend(super::rules::frame(4, 0, call, &[9; 90]));
    }
    raw.write_all(&bytes).await.map_err(|e| e.to_string())?;
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut rest))
        .await
        .map_err(|_| "the connection did not close".to_owned())?
        .map_err(|e| e.to_string())?;
    let _ = server.await;
    if super::raw::goaway_code_in(&rest) != Some(6) {
        return Err("no GOAWAY 6".into());
    }
    let (x, y) = Jittery::pair(seed + 1);
    let (a, _b) = tokio::join!(
        Connection::start(x, ConnectionConfig::new(Role::Initiator)),
        Connection::start(y, ConnectionConfig::new(Role::Acceptor).serve(app())),
    );
    let a = a.map_err(|e| e.to_string())?;
    body_is(a.get("/big/10").send().await, 10).await
}

#[test]
fn a_violation_with_unstarted_calls_closes_only_its_connection_under_seeded_reads() {
    sweep(
        "violation",
        seeds(0, 2000),
        1,
        Duration::from_secs(10),
        violation_with_unstarted_calls,
    );
    sweep(
        "violation",
        seeds(50_000, 500),
        2,
        Duration::from_secs(10),
        violation_with_unstarted_calls,
    );
}
