//! The client side: TLS for `wss://` (checked against [`TrustedRoots`]), the WebSocket
//! handshake, then the byte stream SSH runs on.

use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::WebTarget;
use super::io::{MAX_MESSAGE, WsIo};
use crate::proxy::Tunnel;
use crate::tls::TrustedRoots;

/// Why a WebSocket could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebSocketError {
    /// The TLS handshake failed (an untrusted or expired certificate, a name it does not
    /// cover, not TLS at all).
    #[error("TLS with {url}: {why}")]
    Tls {
        /// The URL dialed.
        url: String,
        /// Why.
        why: String,
    },
    /// The HTTP server answered the upgrade with something other than `101`.
    #[error(
        "{url} answered HTTP {status} instead of a WebSocket (is it an rrssh server's web port, and its path {path}?)"
    )]
    Refused {
        /// The URL dialed.
        url: String,
        /// The status it answered.
        status: u16,
        /// The path asked for.
        path: String,
    },
    /// The WebSocket handshake failed otherwise.
    #[error("WebSocket handshake with {url}: {why}")]
    Handshake {
        /// The URL dialed.
        url: String,
        /// Why.
        why: String,
    },
}

/// The settings of the WebSocket layer: messages are bounded, buffers kept small (an idle
/// connection holds 16 KiB for reading).
pub(crate) fn config() -> tungstenite::protocol::WebSocketConfig {
    tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(4 * super::io::MAX_WRITE)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// Opens the WebSocket to `target` over `io` (a TCP connection or a proxy's tunnel).
pub(crate) async fn dial(
    io: Box<dyn Tunnel>,
    target: &WebTarget,
    roots: Option<&TrustedRoots>,
) -> Result<Box<dyn Tunnel>, WebSocketError> {
    let url = target.url();
    let io: Box<dyn Tunnel> = if target.tls {
        let tls_err = |why: String| WebSocketError::Tls {
            url: url.clone(),
            why,
        };
        let roots = roots.cloned().unwrap_or_else(TrustedRoots::system);
        let config = roots.client_config().map_err(|e| tls_err(e.to_string()))?;
        let name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|e| tls_err(format!("`{}` is no host name: {e}", target.host)))?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, io)
            .await
            .map_err(|e| tls_err(e.to_string()))?;
        Box::new(tls)
    } else {
        io
    };
    let request = url
        .as_str()
        .into_client_request()
        .map_err(|e| WebSocketError::Handshake {
            url: url.clone(),
            why: e.to_string(),
        })?;
    let (ws, _answer) = tokio_tungstenite::client_async_with_config(request, io, Some(config()))
        .await
        .map_err(|e| match e {
            tungstenite::Error::Http(answer) => WebSocketError::Refused {
                url: url.clone(),
                status: answer.status().as_u16(),
                path: target.path.clone(),
            },
            e => WebSocketError::Handshake {
                url: url.clone(),
                why: e.to_string(),
            },
        })?;
    Ok(Box::new(WsIo::new(ws)))
}
