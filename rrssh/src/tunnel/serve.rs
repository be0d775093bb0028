//! The server's side of a tunnel: a `direct-tcpip` channel joined to a TCP connection.

use std::time::Duration;

use russh::server::{ChannelOpenHandle, Msg};
use russh::{Channel, ChannelOpenFailure};

use super::PermitOpen;
use crate::keys::AuthorizedKey;

/// How long the server tries to reach a tunnel's target.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What one key may open, from the server's list and the key's own options.
#[derive(Debug, Clone)]
pub(crate) struct KeyTunnels {
    allowed: bool,
    narrowed: Option<PermitOpen>,
}

impl KeyTunnels {
    /// Reads `no-port-forwarding`, `restrict`, `port-forwarding` and `permitopen="…"`.
    pub(crate) fn of(entry: &AuthorizedKey) -> Self {
        let has = |o: &str| entry.options.contains_key(o);
        let allowed = !has("no-port-forwarding") && (!has("restrict") || has("port-forwarding"));
        // Malformed values are refused when the file is loaded; here they refuse everything.
        let narrowed = entry
            .option("permitopen")
            .map(|v| PermitOpen::parse(v).unwrap_or_default());
        Self { allowed, narrowed }
    }

    /// Why `host:port` is refused, if it is.
    pub(crate) fn refusal(
        &self,
        server: &PermitOpen,
        host: &str,
        port: u32,
    ) -> Option<&'static str> {
        if !self.allowed {
            Some("port forwarding is turned off for this key")
        } else if !server.allows(host, port) {
            Some("the server does not permit this target")
        } else if self
            .narrowed
            .as_ref()
            .is_some_and(|n| !n.allows(host, port))
        {
            Some("this key's permitopen does not include this target")
        } else {
            None
        }
    }
}

/// Connects to `host:port` and, once connected, accepts the channel and copies both ways until
/// either side closes; answers `ConnectFailed` if the target cannot be reached. Run it in a task
/// of its own (it must not block the SSH session's loop).
pub(crate) async fn join(channel: Channel<Msg>, reply: ChannelOpenHandle, host: String, port: u32) {
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
