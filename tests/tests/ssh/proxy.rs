//! A fault-injecting TCP proxy for tests: pass-through, added latency, black hole (connections
//! stay open but nothing gets through), reset (every open connection is cut), and cut after N
//! bytes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Default)]
struct Faults {
    black_hole: AtomicBool,
    /// Added one-way delay per chunk, in microseconds.
    latency_us: AtomicU64,
    /// Cut a connection once this many bytes went through it (both directions); 0 = never.
    cut_after: AtomicU64,
}

/// A proxy in front of `target`; stops when dropped.
pub(crate) struct Proxy {
    addr: SocketAddr,
    faults: Arc<Faults>,
    generation: watch::Sender<u64>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub(crate) async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let faults = Arc::new(Faults::default());
        let (generation, _) = watch::channel(0u64);
        let (f, tx) = (faults.clone(), generation.clone());
        let accept = tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let Ok(up) = TcpStream::connect(target).await else {
                    continue;
                };
                let _ = (down.set_nodelay(true), up.set_nodelay(true));
                let mut reset = tx.subscribe();
                let f = f.clone();
                tokio::spawn(async move {
                    let (dr, dw) = down.into_split();
                    let (ur, uw) = up.into_split();
                    let passed = AtomicU64::new(0);
                    tokio::select! {
                        () = pipe(dr, uw, &f, &passed) => {}
                        () = pipe(ur, dw, &f, &passed) => {}
                        _ = reset.changed() => {} // dropping both sockets cuts the connection
                    }
                });
            }
        });
        Self {
            addr,
            faults,
            generation,
            accept,
        }
    }

    /// Where clients connect.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops everything in both directions while on; connections stay open.
    pub(crate) fn black_hole(&self, on: bool) {
        self.faults.black_hole.store(on, Ordering::SeqCst);
    }

    /// Delays every chunk by `d` in each direction.
    pub(crate) fn latency(&self, d: Duration) {
        self.faults
            .latency_us
            .store(d.as_micros() as u64, Ordering::SeqCst);
    }

    /// Cuts each connection (new or open) once `n` bytes have gone through it; 0 turns it off.
    pub(crate) fn cut_after(&self, n: u64) {
        self.faults.cut_after.store(n, Ordering::SeqCst);
    }

    /// Cuts every open connection.
    pub(crate) fn reset_all(&self) {
        self.generation.send_modify(|g| *g += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.reset_all();
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    faults: &Faults,
    passed: &AtomicU64,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if faults.black_hole.load(Ordering::SeqCst) {
            continue;
        }
        let mut n = n;
        let cut = faults.cut_after.load(Ordering::SeqCst);
        if cut > 0 {
            let before = passed.fetch_add(n as u64, Ordering::SeqCst);
            if before + n as u64 >= cut {
                n = cut.saturating_sub(before) as usize;
                let _ = to.write_all(&buf[..n]).await;
                return; // the other direction ends with the select
            }
        }
        let delay = faults.latency_us.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_micros(delay)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
