//! Targets that are WebSocket URLs (`ws://`, `wss://`): where they point, and the WebSocket
//! opened over the TCP connection (or proxy tunnel) to them before SSH starts.

use super::ConnectError;
use crate::proxy::Tunnel;

/// The authorities a `wss://` client trusts (nothing without the `websocket` feature).
#[cfg(feature = "websocket")]
pub(super) type Roots = crate::tls::TrustedRoots;
/// The authorities a `wss://` client trusts (nothing without the `websocket` feature).
#[cfg(not(feature = "websocket"))]
pub(super) type Roots = ();

/// Where a target points, as SSH sees it, and whether SSH runs over a WebSocket to it.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    pub(super) host: String,
    pub(super) port: u16,
    #[cfg(feature = "websocket")]
    web: Option<crate::websocket::WebTarget>,
}

impl Endpoint {
    /// Reads `addr`: `host[:port]`, `[v6]:port`, or (with the `websocket` feature) a
    /// WebSocket URL.
    pub(super) fn parse(addr: &str) -> Result<Self, ConnectError> {
        #[cfg(feature = "websocket")]
        if let Some(web) =
            crate::websocket::WebTarget::parse(addr).map_err(ConnectError::BadTarget)?
        {
            return Ok(Self {
                host: web.host.clone(),
                port: web.port,
                web: Some(web),
            });
        }
        #[cfg(not(feature = "websocket"))]
        if addr.starts_with("ws://") || addr.starts_with("wss://") {
            return Err(ConnectError::BadTarget(format!(
                "{addr} (WebSocket targets need rrssh's `websocket` feature)"
            )));
        }
        let (host, port) = split_host_port(addr);
        if host.is_empty() || host.starts_with('-') {
            return Err(ConnectError::BadTarget(host));
        }
        Ok(Self {
            host,
            port,
            #[cfg(feature = "websocket")]
            web: None,
        })
    }

    /// The user name a WebSocket URL gives (`wss://ada@hub.example`).
    pub(super) fn user_in(addr: &str) -> Option<String> {
        #[cfg(feature = "websocket")]
        if let Ok(Some(web)) = crate::websocket::WebTarget::parse(addr) {
            return web.user;
        }
        let _ = addr;
        None
    }

    /// The byte stream SSH runs on over `io`: `io` itself, or a WebSocket over it.
    pub(super) async fn carry(
        &self,
        io: Box<dyn Tunnel>,
        roots: Option<&Roots>,
    ) -> Result<Box<dyn Tunnel>, ConnectError> {
        #[cfg(feature = "websocket")]
        if let Some(web) = &self.web {
            return Ok(crate::websocket::dial(io, web, roots).await?);
        }
        let _ = roots;
        Ok(io)
    }
}

fn split_host_port(addr: &str) -> (String, u16) {
    if let Some(rest) = addr.strip_prefix('[')
        && let Some((h, p)) = rest.split_once("]:")
    {
        return (h.to_owned(), p.parse().unwrap_or(super::DEFAULT_PORT));
    }
    match addr.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => {
            (h.to_owned(), p.parse().unwrap_or(super::DEFAULT_PORT))
        }
        _ => (addr.to_owned(), super::DEFAULT_PORT),
    }
}
