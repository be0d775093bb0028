//! Dialing through a proxy, for networks that reach the outside only that way: an HTTP proxy
//! (`CONNECT`, with Basic authentication) or a SOCKS5 proxy (with a user name and password).
//!
//! A client dials through [`ClientBuilder::proxy`](crate::transport::ClientBuilder::proxy), or
//! through the proxy the environment names, as curl does: `ALL_PROXY`, else `HTTPS_PROXY`
//! (lower-case names too), unless the host is in `NO_PROXY`. The SSH session runs end to end
//! inside the tunnel the proxy opens: the proxy sees neither keys nor calls.
//!
//! ```text
//! http://[user:password@]proxy[:port]      HTTP CONNECT (port 80 unless given)
//! socks5://[user:password@]proxy[:port]    SOCKS5, names resolved here (port 1080)
//! socks5h://[user:password@]proxy[:port]   SOCKS5, names resolved by the proxy
//! ```
//!
//! User names and passwords are percent-decoded. What a proxy answers is bounded: an HTTP
//! answer's head may be [`MAX_HEAD`] bytes.

mod env;
mod http_connect;
mod socks5;
mod url;

use std::fmt;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub use self::env::from_env;
pub use self::http_connect::MAX_HEAD;

/// A proxy to dial through.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    kind: Kind,
    /// `host:port` of the proxy.
    addr: String,
    auth: Option<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    HttpConnect,
    /// `remote_dns`: the proxy resolves the target's name (`socks5h`).
    Socks5 {
        remote_dns: bool,
    },
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password is never printed.
        f.debug_struct("Proxy")
            .field("kind", &self.kind)
            .field("addr", &self.addr)
            .field("user", &self.auth.as_ref().map(|(u, _)| u))
            .finish()
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.kind {
            Kind::HttpConnect => "http",
            Kind::Socks5 { remote_dns: false } => "socks5",
            Kind::Socks5 { remote_dns: true } => "socks5h",
        };
        write!(f, "{scheme}://{}", self.addr)
    }
}

/// Why dialing through a proxy failed, or a proxy URL is wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The URL is not one of the forms above.
    #[error("bad proxy URL `{url}`: {why}")]
    BadUrl {
        /// The URL, without its password.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The proxy could not be reached.
    #[error("cannot reach the proxy {proxy}: {source}")]
    Unreachable {
        /// The proxy.
        proxy: String,
        /// Why.
        source: std::io::Error,
    },
    /// The proxy refused to open the tunnel, or answered what no proxy should.
    #[error("the proxy {proxy} refused the tunnel to {target}: {why}")]
    Refused {
        /// The proxy.
        proxy: String,
        /// `host:port` asked for.
        target: String,
        /// What it said (`407 Proxy Authentication Required`, a SOCKS reply).
        why: String,
    },
}

/// A byte stream through the proxy to the target.
pub trait Tunnel: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Tunnel for T {}

impl Proxy {
    /// Parses a proxy URL (see the [module](self)).
    pub fn parse(url: &str) -> Result<Self, ProxyError> {
        url::parse(url)
    }

    /// Its `host:port`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Opens a tunnel through the proxy to `host:port`.
    pub async fn connect(&self, host: &str, port: u16) -> Result<Box<dyn Tunnel>, ProxyError> {
        let tcp = TcpStream::connect(self.addr.as_str())
            .await
            .map_err(|source| ProxyError::Unreachable {
                proxy: self.to_string(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let refused = |why: String| ProxyError::Refused {
            proxy: self.to_string(),
            target: format!("{host}:{port}"),
            why,
        };
        match self.kind {
            Kind::HttpConnect => {
                let tcp = http_connect::open(tcp, host, port, self.auth.as_ref())
                    .await
                    .map_err(refused)?;
                Ok(Box::new(tcp))
            }
            Kind::Socks5 { remote_dns } => {
                let stream = socks5::open(tcp, host, port, remote_dns, self.auth.as_ref())
                    .await
                    .map_err(refused)?;
                Ok(Box::new(stream))
            }
        }
    }
}
