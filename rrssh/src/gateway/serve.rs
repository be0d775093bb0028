//! Serving the gateway over HTTP/1.1, with the bounds a public listener needs: a time limit on
//! reading request heads (slowloris), an idle timeout, and a cap on connections.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

/// The limits of a gateway's HTTP listener.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpLimits {
    pub(crate) header_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            max_connections: 512,
        }
    }
}

/// Serves `router` on `listener` until `stop` resolves; then each connection finishes the
/// request it is in and closes.
pub(super) async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limits: HttpLimits,
    stop: impl std::future::Future<Output = ()> + Send,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop = async move {
        stop.await;
        let _ = stop_tx.send(true);
    };
    crate::accept::accept_loop(listener, stop, "gateway", move |tcp, remote| {
        let slot = slots.clone().try_acquire_owned();
        let (router, stop_rx) = (router.clone(), stop_rx.clone());
        async move {
            let Ok(_slot) = slot else {
                crate::logging::limited("gateway-full", || {
                    tracing::warn!(%remote, limit = limits.max_connections, "gateway: too many connections; refused");
                });
                return refuse(tcp, limits.max_connections).await;
            };
            connection(tcp, router, limits, stop_rx).await;
        }
    })
    .await;
}

/// Tells a connection over the cap why, and closes it.
async fn refuse(mut tcp: TcpStream, limit: usize) {
    let body = format!("the gateway holds its limit of {limit} connections; try again later\n");
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\nretry-after: 1\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), tcp.write_all(answer.as_bytes())).await;
    let _ = tcp.shutdown().await;
}

/// Serves HTTP/1.1 on one connection (`io`, TCP or TLS) until it closes, idles for the idle
/// timeout, takes too long to send a request head, or `stop` is set; a WebSocket upgrade ends
/// it too, the upgraded connection going on in the task that answered the upgrade.
pub(crate) async fn connection<T>(
    io: T,
    router: axum::Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let started = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Watched {
        io,
        last: last.clone(),
        started,
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(io, TowerToHyperService::new(router))
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let idle = async {
        // Cut when no byte has moved either way for the idle timeout.
        loop {
            let seen = started + Duration::from_millis(last.load(Ordering::Relaxed));
            let due = seen + limits.idle_timeout;
            if Instant::now() >= due {
                return;
            }
            tokio::time::sleep_until(due).await;
        }
    };
    tokio::select! {
        r = &mut conn => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "gateway connection ended");
            }
        }
        () = idle => {
            tracing::debug!("gateway connection idle; closed");
        }
        () = async { let _ = stop.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
        }
    }
}

/// A connection that records when a byte last moved (milliseconds after `started`).
struct Watched<T> {
    io: T,
    last: Arc<AtomicU64>,
    started: Instant,
}

impl<T> Watched<T> {
    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
