//! A fault-injecting TCP proxy for tests: pass-through, black hole (connections stay open but
//! nothing gets through), and reset (every open connection is cut).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A proxy in front of `target`; stops when dropped.
pub(crate) struct Proxy {
    addr: SocketAddr,
    black_hole: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub(crate) async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let black_hole = Arc::new(AtomicBool::new(false));
        let (generation, _) = watch::channel(0u64);
        let (bh, tx) = (black_hole.clone(), generation.clone());
        let accept = tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let Ok(up) = TcpStream::connect(target).await else {
                    continue;
                };
                let _ = (down.set_nodelay(true), up.set_nodelay(true));
                let mut reset = tx.subscribe();
                let bh = bh.clone();
                tokio::spawn(async move {
                    let (dr, dw) = down.into_split();
                    let (ur, uw) = up.into_split();
                    tokio::select! {
                        () = pipe(dr, uw, bh.clone()) => {}
                        () = pipe(ur, dw, bh) => {}
                        _ = reset.changed() => {} // dropping both sockets cuts the connection
                    }
                });
            }
        });
        Self {
            addr,
            black_hole,
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
        self.black_hole.store(on, Ordering::SeqCst);
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
    black_hole: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if black_hole.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
