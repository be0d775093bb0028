//! TCP tunnels over an rrssh SSH connection: local forwarding, as `ssh -L` does.
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
//! The channels are plain SSH, so OpenSSH's `ssh -L 5433:db:5432 -N host` works against an
//! rrssh server too.

mod local;
mod permit;
pub(crate) mod serve;

pub use self::local::LocalForward;
pub use self::permit::{PermitOpen, PermitOpenError};
