//! Services behind a stock `sshd`, through `tcpip-forward`.

use std::fmt;

use super::client::{ClientBuilder, ClientHandler, ConnectError, ForwardServe};

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
            let (ssh, _, _) = self.dial(Some(forward)).await?;
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
