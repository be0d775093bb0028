//! Remote forwarding: the server listens, and each connection it accepts comes back through
//! the SSH connection to a target this side reaches (`ssh -R`).

use std::fmt;
use std::time::Duration;

use crate::{Client, ReconnectingClient};

/// A remote tunnel could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TunnelError(String);

/// A running remote tunnel: the server listens on [`port`](Self::port) and each connection
/// there is carried to the target on this side. Dropping it asks the server to stop listening.
pub struct RemoteTunnel {
    port: u16,
    inner: Inner,
}

enum Inner {
    One { client: Client, bind: String },
    Persistent(tokio::task::JoinHandle<()>),
}

impl RemoteTunnel {
    /// The port the server listens on (the one it chose, if 0 was asked for).
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for RemoteTunnel {
    fn drop(&mut self) {
        match &self.inner {
            Inner::One { client, bind } => client.cancel_remote(bind.clone(), self.port),
            Inner::Persistent(task) => task.abort(),
        }
    }
}

impl fmt::Debug for RemoteTunnel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteTunnel")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Asks the server to listen on `bind:port` (`port` 0: one it picks) and carries each
    /// connection it accepts to `host:target_port` as this machine sees it, like
    /// `ssh -R bind:port:host:target_port`. The server must permit the address
    /// ([`Server::permit_listen`](crate::Server::permit_listen)).
    pub async fn forward_remote(
        &self,
        bind: &str,
        port: u16,
        host: &str,
        target_port: u16,
    ) -> Result<RemoteTunnel, TunnelError> {
        let port = self
            .request_remote(bind, port, host, target_port)
            .await
            .map_err(TunnelError)?;
        Ok(RemoteTunnel {
            port,
            inner: Inner::One {
                client: self.clone(),
                bind: bind.to_owned(),
            },
        })
    }
}

impl ReconnectingClient {
    /// Like [`Client::forward_remote`], but persistent: asked again on every new connection.
    /// `port` must not be 0 (the port would change with each connection). Fails only if the
    /// first connection's server refuses; later refusals are logged and retried.
    pub async fn forward_remote(
        &self,
        bind: &str,
        port: u16,
        host: &str,
        target_port: u16,
    ) -> Result<RemoteTunnel, TunnelError> {
        if port == 0 {
            return Err(TunnelError(
                "a persistent remote tunnel needs a fixed port, not 0".to_owned(),
            ));
        }
        let first = self.connected().await;
        let tunnel = first.forward_remote(bind, port, host, target_port).await?;
        let (me, bind, host) = (self.clone(), bind.to_owned(), host.to_owned());
        let task = tokio::spawn(async move {
            let mut current = Some((first, tunnel));
            loop {
                if let Some((client, tunnel)) = current.take() {
                    client.closed().await;
                    drop(tunnel);
                }
                let client = me.connected().await;
                match client.forward_remote(&bind, port, &host, target_port).await {
                    Ok(t) => {
                        tracing::info!(port, "remote tunnel asked again after reconnecting");
                        current = Some((client, t));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "remote tunnel refused after reconnecting; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(RemoteTunnel {
            port,
            inner: Inner::Persistent(task),
        })
    }
}
