//! The plain-TCP carrier: the same protocol with no SSH underneath, so no encryption and no
//! authentication. Only for loopback, trusted networks, or behind an SSH forward (a port that
//! `sshd` forwards to a service, see [`RemoteForward`](super::RemoteForward)). Calls carry no
//! [`Peer`](crate::Peer), so authorization layers answer them 401.

use tokio::net::ToSocketAddrs;

use super::ConnectError;
use super::client::{Carrier, Client};
use crate::connection::{Connection, ConnectionConfig};
use crate::proto::Role;

impl Client {
    /// Connects over plain TCP: no SSH, so no encryption and no authentication. Only for
    /// loopback, trusted networks, or a port that `sshd` forwards to a service
    /// ([`RemoteForward`](super::RemoteForward)).
    pub async fn tcp(addr: impl ToSocketAddrs) -> Result<Client, ConnectError> {
        let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host(addr)
            .await
            .map_err(|source| ConnectError::Io {
                addr: "(unresolved)".into(),
                source,
            })?
            .collect();
        let shown = addrs.first().map_or_else(String::new, ToString::to_string);
        let tcp = tokio::net::TcpStream::connect(&addrs[..])
            .await
            .map_err(|source| ConnectError::Io {
                addr: shown,
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let conn = Connection::start(tcp, ConnectionConfig::new(Role::Initiator)).await?;
        Ok(Client::new(conn, Carrier::Tcp, None))
    }
}
