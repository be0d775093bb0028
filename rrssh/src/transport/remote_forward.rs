//! Services behind a stock `sshd`, through `tcpip-forward`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::ssh_handler::{ClientHandler, ForwardServe};
use super::{ClientBuilder, ConnectError};

/// A service behind a stock `sshd`: the service dials the SSH server and asks it to listen on a
/// port for it with the standard `tcpip-forward` request (what `ssh -R` does); each connection
/// to that port is forwarded over SSH to the service, which serves its router on it. Callers on
/// that host use [`Client::tcp`](super::Client::tcp) on the port, or reach it from anywhere with
/// `ssh -W` through [`Client::over_command`](super::Client::over_command).
///
/// The `sshd_config` of the host needs (for the key's user, in a `Match` block if you like):
///
/// ```text
/// AllowTcpForwarding remote      # callers on the sshd host only (Client::tcp)
/// GatewayPorts no                # the port listens on loopback only
/// PermitListen 127.0.0.1:9000    # OpenSSH 7.8+: only the ports you mean
/// ```
///
/// For callers elsewhere, through `ssh -W 127.0.0.1:9000 host`, use `AllowTcpForwarding yes`
/// with `PermitOpen 127.0.0.1:9000` so that local forwarding reaches only that port.
///
/// Forwarding stops when it is dropped or [closed](Self::close).
pub struct RemoteForward {
    ssh: russh::client::Handle<ClientHandler>,
    bind: String,
    port: u32,
}

impl fmt::Debug for RemoteForward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteForward")
            .field("bind", &self.bind)
            .field("port", &self.port)
            .finish()
    }
}

impl ClientBuilder {
    /// Dials the SSH server and asks it to listen on `bind:port` (port 0: any free port) and
    /// forward each connection to this process, which serves the builder's router on it
    /// ([`serve`](Self::serve)). Works with a stock OpenSSH `sshd`.
    pub async fn serve_remote_forward(
        self,
        bind: impl Into<String>,
        port: u32,
    ) -> Result<RemoteForward, ConnectError> {
        let bind = bind.into();
        let timeout = self.timeout_of();
        let addr = self.addr_of().to_owned();
        let work = async {
            let forward = ForwardServe {
                router: self.router().cloned(),
                limits: self.limits_of(),
            };
            let (ssh, _, _, _) = self.dial(Some(forward)).await?;
            let got = ssh
                .tcpip_forward(bind.clone(), port)
                .await
                .map_err(|e| match e {
                    russh::Error::RequestDenied => ConnectError::ForwardRefused(format!(
                        "{bind}:{port} (check AllowTcpForwarding and PermitListen in sshd_config)"
                    )),
                    e => ConnectError::Ssh(e),
                })?;
            let port = if got == 0 { port } else { got };
            tracing::info!(%bind, port, server = %addr, "remote forward listening");
            Ok(RemoteForward { ssh, bind, port })
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| ConnectError::Timeout(addr.clone()))?
    }
}

/// A [`RemoteForward`] that dials again, with the builder's backoff, whenever the SSH session
/// ends or the server refuses; see
/// [`serve_remote_forward_persistent`](ClientBuilder::serve_remote_forward_persistent).
/// Stops when dropped.
pub struct PersistentRemoteForward {
    /// The port the server listens on now (0 while not listening).
    port: Arc<AtomicU16>,
    task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for PersistentRemoteForward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersistentRemoteForward")
            .field("port", &self.port())
            .finish_non_exhaustive()
    }
}

impl PersistentRemoteForward {
    /// The port the SSH server listens on for this service now; `None` between sessions.
    pub fn port(&self) -> Option<u16> {
        match self.port.load(Ordering::Acquire) {
            0 => None,
            p => Some(p),
        }
    }
}

impl Drop for PersistentRemoteForward {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How often a persistent forward looks whether its SSH session ended (keepalives end a dead
/// one).
const SESSION_CHECK: Duration = Duration::from_millis(200);

impl ClientBuilder {
    /// [`serve_remote_forward`](Self::serve_remote_forward), kept up: when the SSH session ends
    /// (the server restarted, the network failed and keepalives noticed) or the request is
    /// refused, it dials again with the builder's [`backoff`](Self::backoff), forever, until
    /// the returned handle is dropped. Use a fixed `port`, so callers find the service again.
    pub fn serve_remote_forward_persistent(
        self,
        bind: impl Into<String>,
        port: u32,
    ) -> PersistentRemoteForward {
        let bind = bind.into();
        let shared = Arc::new(AtomicU16::new(0));
        let backoff = self.backoff_of();
        let task = tokio::spawn({
            let shared = shared.clone();
            async move {
                let mut attempt = 0u32;
                loop {
                    match self.clone().serve_remote_forward(bind.clone(), port).await {
                        Ok(fwd) => {
                            let up = Instant::now();
                            shared.store(fwd.port(), Ordering::Release);
                            while !fwd.is_closed() {
                                tokio::time::sleep(SESSION_CHECK).await;
                            }
                            shared.store(0, Ordering::Release);
                            tracing::info!(%bind, port, "remote forward lost; dialing again");
                            if up.elapsed() >= backoff.reset_after {
                                attempt = 0;
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, attempt, "remote forward failed"),
                    }
                    tokio::time::sleep(backoff.delay(attempt)).await;
                    attempt = attempt.saturating_add(1);
                }
            }
        });
        PersistentRemoteForward { port: shared, task }
    }
}

impl RemoteForward {
    /// The port the SSH server listens on for this service.
    pub fn port(&self) -> u16 {
        self.port as u16
    }

    /// The address it listens on, as requested.
    pub fn bind_address(&self) -> &str {
        &self.bind
    }

    /// Whether the SSH session has ended.
    pub fn is_closed(&self) -> bool {
        self.ssh.is_closed()
    }

    /// Stops forwarding and disconnects.
    pub async fn close(self) {
        let _ = self
            .ssh
            .cancel_tcpip_forward(self.bind.clone(), self.port)
            .await;
        let _ = self
            .ssh
            .disconnect(russh::Disconnect::ByApplication, "bye", "")
            .await;
    }
}
