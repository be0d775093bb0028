//! Why connecting failed, and whether trying again may help.

use crate::connection::HandshakeError;
use crate::keys::HostKeyError;

/// Why connecting failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The TCP connection failed.
    #[error("cannot connect to {addr}: {source}")]
    Io {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The server's host key was refused.
    #[error(transparent)]
    HostKey(#[from] HostKeyError),
    /// The server refused every way we tried to log in.
    #[error("the server refused user {user} (tried: {})", if tried.is_empty() { "nothing it offers".to_owned() } else { tried.join(", ") })]
    AuthRejected {
        /// The user name.
        user: String,
        /// What was tried, in order (`key SHA256:…`, `agent key SHA256:…`, `password`).
        tried: Vec<String>,
    },
    /// No way to log in was given.
    #[error("no way to log in: give a key (`identity`), an ssh-agent (`agent`) or a password")]
    NoIdentity,
    /// The ssh-agent could not be reached or failed.
    #[error("ssh-agent: {0}")]
    Agent(String),
    /// No host key policy was given.
    #[error("no host key policy: call `host_keys` (known_hosts file or a pinned key)")]
    NoHostKeyPolicy,
    /// The server has no rrssh API (it refused the `rrssh` subsystem): a stock SSH server.
    /// Terminals and tunnels still work on a [`plain`](super::ClientBuilder::plain) connection.
    #[error(
        "the server has no rrssh API (it refused the `rrssh` subsystem); terminals and tunnels \
         work without it (`ClientBuilder::plain`)"
    )]
    SubsystemRefused,
    /// The SSH layer failed.
    #[error("SSH error: {0}")]
    Ssh(#[from] russh::Error),
    /// The WebSocket (`ws://`, `wss://`) could not be opened: TLS, or the HTTP upgrade.
    #[cfg(feature = "websocket")]
    #[error(transparent)]
    WebSocket(#[from] crate::websocket::WebSocketError),
    /// The proxy could not be reached or refused the tunnel, or its URL is wrong.
    #[error(transparent)]
    Proxy(#[from] crate::proxy::ProxyError),
    /// The rrssh handshake failed.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// The target cannot be a host name (it starts with `-`, or is empty).
    #[error("bad target `{0}`: a host name cannot be empty or start with `-`")]
    BadTarget(String),
    /// Connecting took too long.
    #[error("connecting to {0} timed out")]
    Timeout(String),
    /// The SSH server refused to listen for us (`tcpip-forward`).
    #[error("the SSH server refused to forward {0}")]
    ForwardRefused(String),
    /// The carrier command (such as `ssh`) could not start or exited during the handshake;
    /// its standard error says why.
    #[error("{program} exited with {status}: {stderr}")]
    Command {
        /// The program.
        program: String,
        /// Its exit status (or why there is none).
        status: String,
        /// What it wrote to standard error, trimmed.
        stderr: String,
    },
}

impl ConnectError {
    /// Whether trying again later may succeed: the server could not be reached, timed out,
    /// or dropped the connection (it may be starting or restarting). Not so for what the
    /// server or this side decided: a refused host key or login, no way to log in, no rrssh
    /// API, a bad target, a refused forward.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Io { .. } | Self::Timeout(_) | Self::Ssh(_) | Self::Command { .. } => true,
            #[cfg(feature = "websocket")]
            Self::WebSocket(_) => true,
            Self::Proxy(e) => !matches!(e, crate::proxy::ProxyError::BadUrl { .. }),
            Self::HostKey(_)
            | Self::AuthRejected { .. }
            | Self::NoIdentity
            | Self::Agent(_)
            | Self::NoHostKeyPolicy
            | Self::SubsystemRefused
            | Self::Handshake(_)
            | Self::BadTarget(_)
            | Self::ForwardRefused(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ConnectError;

    #[test]
    fn unreachable_is_transient_and_refused_is_not() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(
            ConnectError::Io {
                addr: "127.0.0.1:1".into(),
                source: refused
            }
            .is_transient()
        );
        assert!(ConnectError::Timeout("h".into()).is_transient());
        assert!(!ConnectError::NoIdentity.is_transient());
        assert!(!ConnectError::SubsystemRefused.is_transient());
        assert!(
            !ConnectError::AuthRejected {
                user: "u".into(),
                tried: vec![]
            }
            .is_transient()
        );
    }
}
