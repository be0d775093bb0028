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
//! The channels are plain SSH, so OpenSSH's `ssh -L 5433:db:5432 -N host` and `ssh -R` work
//! against an rrssh server.

mod local;

mod remote;
pub(crate) mod serve;

pub use self::local::LocalForward;
pub use self::remote::{RemoteTunnel, TunnelError};
pub use crate::keys::permit::{PermitOpen, PermitOpenError};
