//! The one accept loop of a server, whatever carrier runs on its connections.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Accepts connections until `stop` says so, running what `serve` makes of each in a task of
/// its own. Finished tasks are reaped as it goes; aborting the returned task aborts every
/// connection's. After stopping, the listener closes and open connections run on.
pub(super) fn spawn<F, Fut>(
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
    mut serve: F,
) -> JoinHandle<()>
where
    F: FnMut(TcpStream, SocketAddr) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            let (tcp, remote) = tokio::select! {
                _ = stop.changed() => break,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of descriptors, most likely: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            };
            let _ = tcp.set_nodelay(true);
            conns.spawn(serve(tcp, remote));
        }
        drop(listener);
        while conns.join_next().await.is_some() {}
    })
}
