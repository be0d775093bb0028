//! The web listener: one port for SSH over WebSocket, raw SSH (told apart by its first byte)
//! and, if given, other HTTP routes (the gateway, the web terminal), under TLS when it has a
//! certificate.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::response::{IntoResponse, Response};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::{oneshot, watch};

use super::io::{MAX_MESSAGE, MAX_WRITE, WsIo};
use super::slots::{Full, Slots};
use crate::gateway::serve::HttpLimits;
use crate::hub::Hub;
use crate::hub::listeners::ServeSsh;
use crate::tls::ServerCertificate;

type Session = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A listener for SSH over WebSocket, added to a running [`Hub`] with [`serve`](Self::serve).
///
/// On the one port it serves: SSH over WebSocket at [`PATH`](super::PATH) (binary messages
/// carrying the SSH byte stream, so keys and certificates authenticate end to end as over
/// TCP); raw SSH, told apart by its first byte; and any other routes given with
/// [`http`](Self::http). With a [`tls`](Self::tls) certificate the WebSocket and HTTP run
/// under TLS (`wss://`, `https://`); without one, behind a reverse proxy that ends TLS.
///
/// Bounds: [`max_connections`](Self::max_connections) at once (default 1,024; the next one is
/// answered 503 and closed); 10 s for the first byte, the TLS handshake and each request
/// head; 120 s idle before an upgrade; WebSocket messages of at most 256 KiB (OpenSSH's
/// largest packet), and 16 KiB of read buffer each. Upgraded and raw SSH connections then count among the
/// server's unauthenticated connections until they log in, from the address that connected
/// (behind a reverse proxy, the proxy's: `from=` options and per-address limits see it).
#[must_use]
pub struct WebListener {
    listener: TcpListener,
    tls: Option<Arc<ServerCertificate>>,
    http: Option<axum::Router>,
    path: String,
    max_connections: usize,
    max_per_source: usize,
}

impl std::fmt::Debug for WebListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebListener")
            .field("local_addr", &self.listener.local_addr().ok())
            .field("tls", &self.tls.is_some())
            .field("http", &self.http.is_some())
            .field("path", &self.path)
            .finish()
    }
}

/// The web listener could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebListenError {
    /// Binding the address failed.
    #[error("cannot listen: {0}")]
    Bind(#[from] std::io::Error),
    /// The hub has no SSH server to hand connections to.
    #[error("the hub has no SSH server (a hub from `Server::bind` has one)")]
    NoServer,
    /// The certificate cannot be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

impl WebListener {
    /// Listens on `addr`.
    pub async fn bind(addr: impl ToSocketAddrs) -> Result<Self, WebListenError> {
        Ok(Self::from_listener(TcpListener::bind(addr).await?))
    }

    /// Listens on a socket already bound.
    pub fn from_listener(listener: TcpListener) -> Self {
        Self {
            listener,
            tls: None,
            http: None,
            path: super::PATH.to_owned(),
            max_connections: 1024,
            max_per_source: 64,
        }
    }

    /// Serves TLS with this certificate (reloaded in place with
    /// [`ServerCertificate::reload`]).
    pub fn tls(mut self, certificate: Arc<ServerCertificate>) -> Self {
        self.tls = Some(certificate);
        self
    }

    /// Also serves these routes (a [`Gateway`](crate::gateway::Gateway)'s
    /// [`into_router`](crate::gateway::Gateway::into_router), a web terminal); they must not
    /// route the WebSocket path.
    pub fn http(mut self, routes: axum::Router) -> Self {
        self.http = Some(routes);
        self
    }

    /// The path of the WebSocket (default [`PATH`](super::PATH)).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// How many connections it holds at once (default 1,024), before upgrade and while
    /// serving HTTP; the next one is answered 503.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How many of those one source may hold (default 64): an IPv4 address, or an IPv6 /64.
    /// Its next one is answered 503 while other sources still get in.
    pub fn max_connections_per_source(mut self, n: usize) -> Self {
        self.max_per_source = n.max(1);
        self
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves the hub's SSH side on this listener until the hub stops accepting; dropping the
    /// hub closes every connection it accepted.
    pub fn serve(self, hub: &Hub) -> Result<SocketAddr, WebListenError> {
        let ssh = hub.ssh().ok_or(WebListenError::NoServer)?;
        let local = self.listener.local_addr()?;
        let tls = match &self.tls {
            Some(c) => Some(tokio_rustls::TlsAcceptor::from(c.server_config()?)),
            None => None,
        };
        let ctx = Arc::new(Ctx {
            ssh,
            tls,
            routes: routes(&self.path, self.http.unwrap_or_default()),
            limits: HttpLimits::default(),
            slots: Slots::new(self.max_connections, self.max_per_source),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = hub.stopped();
        let stop = async move {
            stopped.await;
            let _ = stop_tx.send(true);
        };
        let task = tokio::spawn(crate::accept::accept_loop(
            self.listener,
            stop,
            "web listener",
            move |tcp, remote| connection(ctx.clone(), tcp, remote, stop_rx.clone()),
        ));
        hub.attach(task.abort_handle());
        Ok(local)
    }
}

/// What every connection of one listener shares.
struct Ctx {
    ssh: Arc<dyn ServeSsh>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    routes: axum::Router,
    limits: HttpLimits,
    slots: Slots,
}

/// Where an upgraded connection's session goes: back to the task of its TCP connection, so
/// that it ends with the listener.
#[derive(Clone)]
struct Upgraded {
    remote: SocketAddr,
    ssh: Arc<dyn ServeSsh>,
    session: Arc<Mutex<Option<oneshot::Sender<Session>>>>,
}

const FIRST_BYTE: Duration = Duration::from_secs(10);

async fn connection(
    ctx: Arc<Ctx>,
    tcp: TcpStream,
    remote: SocketAddr,
    stop: watch::Receiver<bool>,
) {
    let slot = match ctx.slots.take(remote.ip()) {
        Ok(slot) => slot,
        Err(full) => {
            let body = match full {
                Full::All(limit) => {
                    crate::logging::limited("web-listener-full", || {
                        tracing::warn!(%remote, limit, "web listener: too many connections; refused");
                    });
                    format!(
                        "the server holds its limit of {limit} web connections; try again later\n"
                    )
                }
                Full::Source(limit) => {
                    crate::logging::limited("web-listener-source-full", || {
                        tracing::warn!(%remote, limit, "web listener: too many connections from one source; refused");
                    });
                    format!(
                        "your address holds its limit of {limit} web connections; try again later\n"
                    )
                }
            };
            return refuse(tcp, "503 Service Unavailable", &body).await;
        }
    };
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(FIRST_BYTE, tcp.peek(&mut first)).await;
    if !matches!(peeked, Ok(Ok(1))) {
        return;
    }
    if first[0] == b'S' {
        // Raw SSH: its version line comes first ("SSH-2.0-…").
        drop(slot);
        match ctx.ssh.admit(remote, "ssh on the web port") {
            Ok(serve) => serve(Box::new(tcp)).await,
            Err(why) => {
                let line = format!("rrssh: {why}; try again later\r\n");
                let _ = tcp.try_write(line.as_bytes());
            }
        }
        return;
    }
    let (tx, rx) = oneshot::channel();
    let upgraded = Upgraded {
        remote,
        ssh: ctx.ssh.clone(),
        session: Arc::new(Mutex::new(Some(tx))),
    };
    let routes = ctx.routes.clone().layer(axum::Extension(upgraded));
    match &ctx.tls {
        Some(tls) if first[0] == 0x16 => {
            let Ok(Ok(io)) = tokio::time::timeout(FIRST_BYTE, tls.accept(tcp)).await else {
                tracing::debug!(%remote, "TLS handshake failed");
                return;
            };
            if io.get_ref().1.alpn_protocol() == Some(crate::tls::ACME_TLS_ALPN) {
                // An ACME authority validating a challenge: the handshake was the answer.
                return;
            }
            crate::gateway::serve::connection(io, routes, ctx.limits, stop).await;
        }
        Some(_) => {
            return refuse(
                tcp,
                "400 Bad Request",
                "this port speaks TLS: use https:// or wss://\n",
            )
            .await;
        }
        None => crate::gateway::serve::connection(tcp, routes, ctx.limits, stop).await,
    }
    // The HTTP connection ended; if it was upgraded, its SSH session goes on here.
    drop(slot);
    if let Ok(session) = rx.await {
        session.await;
    }
}

/// The listener's routes: the WebSocket at `path`, then `http`'s.
fn routes(path: &str, http: axum::Router) -> axum::Router {
    axum::Router::new()
        .route(path, axum::routing::get(upgrade))
        .merge(http)
}

/// Upgrades to a WebSocket carrying SSH, if the server admits another handshake from the
/// caller's address.
async fn upgrade(axum::Extension(up): axum::Extension<Upgraded>, ws: WebSocketUpgrade) -> Response {
    let Some(tx) = up.session.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return (http::StatusCode::CONFLICT, "one WebSocket per connection\n").into_response();
    };
    let serve = match up.ssh.admit(up.remote, "websocket") {
        Ok(serve) => serve,
        Err(why) => {
            return (
                http::StatusCode::SERVICE_UNAVAILABLE,
                format!("{why}; try again later\n"),
            )
                .into_response();
        }
    };
    ws.read_buffer_size(16 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(4 * MAX_WRITE)
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| {
            let _ = tx.send(serve(Box::new(WsIo::new(socket))));
            std::future::ready(())
        })
}

/// Answers `status` with `body` and closes.
async fn refuse(mut tcp: TcpStream, status: &str, body: &str) {
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\nretry-after: 1\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), tcp.write_all(answer.as_bytes())).await;
    let _ = tcp.shutdown().await;
}
