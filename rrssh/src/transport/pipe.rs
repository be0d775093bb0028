//! Joining an SSH channel to a TCP connection: the byte copy under every tunnel, on the
//! server (`direct-tcpip`) and on the client (`forwarded-tcpip`).

use std::time::Duration;

use russh::{Channel, ChannelId, ChannelMsg, ChannelOpenFailure, ChannelOpenHandleInner};

/// How long a tunnel's target may take to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `host:port` and, once connected, accepts the channel and copies both ways until
/// either side closes; answers `ConnectFailed` if the target cannot be reached. Run it in a task
/// of its own (it must not block the SSH session's loop).
pub(crate) async fn join<M>(
    channel: Channel<M>,
    reply: ChannelOpenHandleInner<M>,
    host: String,
    port: u32,
) where
    M: From<(ChannelId, ChannelMsg)> + Send + Sync + 'static,
{
    let Ok(port16) = u16::try_from(port) else {
        reply.reject(ChannelOpenFailure::ConnectFailed).await;
        return;
    };
    let tcp = match tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect((host.as_str(), port16)),
    )
    .await
    {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            tracing::info!(%host, port, error = %e, "tunnel target unreachable");
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
            return;
        }
        Err(_) => {
            tracing::info!(%host, port, "tunnel target did not answer in time");
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    reply.accept().await;
    pipe(tcp, channel.into_stream()).await;
}

/// Copies both ways between a TCP connection and a channel; each side's end of input becomes an
/// end of output on the other (half-close), and both are closed when both directions are done.
pub(crate) async fn pipe<C>(mut tcp: tokio::net::TcpStream, mut channel: C)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match tokio::io::copy_bidirectional(&mut tcp, &mut channel).await {
        Ok((up, down)) => tracing::debug!(up, down, "tunnel closed"),
        Err(e) => tracing::debug!(error = %e, "tunnel ended with an error"),
    }
}
