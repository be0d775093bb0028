//! SSH over WebSocket, for networks that let only HTTPS out (port 443, often through a proxy).
//!
//! The WebSocket carries the SSH byte stream in binary messages, so host keys, user keys and
//! everything SSH does (rrssh calls, tunnels, terminals) work end to end as over TCP; TLS
//! (`wss://`) only hides the SSH from the network and gets it past proxies that inspect it.
//!
//! - A client dials `ws://[USER@]HOST[:PORT][/PATH]` or `wss://…` wherever it takes a
//!   `host:port` ([`Client::builder`](crate::Client::builder), the CLI, `hub://`); the path
//!   defaults to [`PATH`], the port to 80 or 443. `wss://` checks the server's certificate
//!   against the system's authorities or those given
//!   ([`ClientBuilder::tls_roots`](crate::transport::ClientBuilder::tls_roots)). Proxies
//!   ([`crate::proxy`]) apply as for TCP.
//! - A server adds a [`WebListener`] to its hub: SSH over WebSocket, raw SSH and HTTP routes
//!   (the gateway, the web terminal) on one port, under TLS with a [`ServerCertificate`]
//!   (`rrssh serve --https ADDR --tls-cert FILE --tls-key FILE`), or without TLS behind a
//!   reverse proxy that ends it (`--ws ADDR`; `examples/nginx/rrssh.conf` is an nginx site for
//!   it). Its certificate may come from an ACME authority ([`Acme`](crate::tls::Acme), the
//!   `acme` feature).
//!
//! [`ServerCertificate`]: crate::tls::ServerCertificate

mod dial;
mod io;
mod listener;
mod slots;
mod target;

pub use self::dial::WebSocketError;
pub(crate) use self::dial::dial;
pub use self::listener::{WebListenError, WebListener};
pub(crate) use self::target::WebTarget;

/// The path of the WebSocket on an rrssh server's web port.
pub const PATH: &str = "/.well-known/rrssh";
