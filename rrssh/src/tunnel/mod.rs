//! TCP tunnels over an rrssh SSH connection: local forwarding (`ssh -L`) and remote
//! forwarding (`ssh -R`).
//!
//! - On the client, [`Client::forward_local`](crate::Client::forward_local) (or
//!   [`ReconnectingClient::forward_local`](crate::ReconnectingClient::forward_local), which
//!   survives reconnections) listens on a local address and carries each TCP connection it accepts
//!   to `host:port` as seen from the server, in a standard `direct-tcpip` channel.
//! - On the server, [`Server::permit_open`](crate::Server::permit_open) says which targets
//!   callers may reach (none by default, like a locked-down OpenSSH `PermitOpen`). On a key's
//!   `authorized_keys` line, `no-port-forwarding` (or `restrict` without `port-forwarding`)
//!   forbids tunnels, and `permitopen="host:port,…"` narrows the targets further.
//!
//! - Remote forwarding is the other way round:
//!   [`Client::forward_remote`](crate::Client::forward_remote) asks the server to listen, and
//!   each connection it accepts comes back to a target on the client's side (a service behind
//!   NAT exposes a TCP port on the hub). The server permits listening addresses with
//!   [`Server::permit_listen`](crate::Server::permit_listen) (none by default); a key's
//!   `permitlisten="host:port,…"` narrows them.
//!
//! - Dynamic forwarding ([`Client::forward_dynamic`](crate::Client::forward_dynamic), `ssh -D`)
//!   is a local SOCKS5 proxy: each connection says where it goes (`CONNECT host:port`), and is
//!   carried there like a local forward's, within the same permissions on the server.
//!
//! The channels are plain SSH, so OpenSSH's `ssh -L 5433:db:5432 -N host` and `ssh -R` work
//! against an rrssh server.

mod dynamic;
mod local;
mod remote;
pub(crate) mod serve;
mod socks;

use std::time::Duration;

use crate::{Client, ReconnectingClient};

pub use self::dynamic::DynamicForward;
pub use self::local::LocalForward;
pub use self::remote::{RemoteTunnel, TunnelError};
pub use crate::keys::permit::{PermitOpen, PermitOpenError};

/// How long an accepted connection waits for a reconnecting client to be connected.
const WAIT_FOR_CONNECTION: Duration = Duration::from_secs(10);

/// Where a forward's listener finds its SSH connection.
#[derive(Clone)]
pub(crate) enum Source {
    /// One connection.
    One(Client),
    /// Whichever connection is up.
    Persistent(ReconnectingClient),
}

impl Source {
    pub(crate) async fn client(&self) -> Option<Client> {
        match self {
            Source::One(c) => Some(c.clone()),
            Source::Persistent(r) => {
                if let Some(c) = r.current() {
                    return Some(c);
                }
                tokio::time::timeout(WAIT_FOR_CONNECTION, r.connected())
                    .await
                    .ok()
            }
        }
    }
}
