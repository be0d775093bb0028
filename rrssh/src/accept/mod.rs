//! The one accept loop: a server's listeners (SSH, plain TCP, web), the gateway's, a local tunnel's, and a
//! forwarded port's all accept through it.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Accepts connections until `stop` resolves, running what `serve` makes of each in a task of
/// its own. Finished tasks are reaped as it goes; dropping (or aborting) this future aborts
/// every connection's task. After `stop`, the listener closes and open connections run on until
/// they end. `what` names the listener in logs.
pub(crate) async fn accept_loop<F, Fut>(
    listener: TcpListener,
    stop: impl Future<Output = ()>,
    what: &'static str,
    mut serve: F,
) where
    F: FnMut(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut conns = JoinSet::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let (tcp, remote) = tokio::select! {
            () = &mut stop => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors, most likely: back off instead of spinning.
                    crate::logging::limited("accept-failed", || {
                        tracing::warn!(error = %e, "{what}: accept failed");
                    });
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
}
