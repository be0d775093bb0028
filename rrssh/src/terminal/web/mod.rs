//! A terminal in the browser: a web page (xterm.js) whose keystrokes travel over a WebSocket to
//! this process, and from here over SSH to a terminal session on an rrssh server.
//!
//! ```no_run
//! # async fn run(client: rrssh::Client) -> std::io::Result<()> {
//! use rrssh::terminal::web::WebTerminal;
//!
//! let web = WebTerminal::new(client);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7681").await?;
//! println!("open http://127.0.0.1:7681/?token={}", web.access_token());
//! axum::serve(listener, web.into_router()).await
//! # }
//! ```
//!
//! The page, its script and xterm.js are compiled into the binary: nothing is fetched from
//! elsewhere. Every page and WebSocket needs the access token (random unless set with
//! [`WebTerminal::token`]), and a WebSocket opened from another origin is refused, so another
//! site open in the same browser cannot reach the terminal. Only requests for loopback
//! addresses and `localhost` are answered, and hosts named with [`WebTerminal::allow_host`], so
//! a site whose name an attacker points at this address (DNS rebinding) is refused too; behind
//! TLS, where the certificate's name does that work, [`WebTerminal::any_host`] answers any. The
//! server's own authorization applies as for any terminal session: this process's key must be
//! allowed terminals there. Serve it on loopback, or behind TLS (a
//! `websocket::WebListener`'s port, with
//! [`WebTerminal::into_router_at`]) or the access control of a reverse proxy.
//!
//! Each page opens its own terminal session on the connection. Closing the page hangs up the
//! session: the server ends the program, as when a terminal window is closed.
//!
//! The WebSocket protocol (`GET /socket?token=T&cols=C&rows=R`): binary messages carry the
//! terminal's bytes both ways. Text messages carry JSON: `{"type":"resize","cols":C,"rows":R}`
//! from the page; `{"type":"exit","status":N}` (the program ended) or
//! `{"type":"error","message":M}` (no session could be opened) from the server, each followed
//! by a close.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::{TerminalOptions, TerminalSession};
use crate::Client;
use crate::auth::secret::constant_time_eq;
use crate::transport::ReconnectingClient;

const INDEX_HTML: &str = include_str!("assets/index.html");
const TERMINAL_MJS: &str = include_str!("assets/terminal.mjs");
const XTERM_MJS: &str = include_str!("assets/xterm.mjs");
const FIT_MJS: &str = include_str!("assets/addon-fit.mjs");
const XTERM_CSS: &str = include_str!("assets/xterm.css");

/// How long a new page waits for a persistent client to be connected.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// Serves a terminal in the browser for a connection to an rrssh server (see the
/// [module documentation](self)).
#[derive(Clone)]
pub struct WebTerminal {
    source: Source,
    options: TerminalOptions,
    token: Arc<str>,
    hosts: Arc<Vec<String>>,
    any_host: bool,
}

#[derive(Clone)]
enum Source {
    Client(Client),
    Persistent(ReconnectingClient),
}

impl fmt::Debug for WebTerminal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebTerminal")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl WebTerminal {
    /// Terminals on the server `client` is connected to, with a random access token.
    pub fn new(client: Client) -> Self {
        Self::with_source(Source::Client(client))
    }

    /// Terminals through a client that reconnects: a page opened while it is disconnected
    /// waits up to 10 s for the connection.
    pub fn persistent(client: ReconnectingClient) -> Self {
        Self::with_source(Source::Persistent(client))
    }

    fn with_source(source: Source) -> Self {
        Self {
            source,
            options: TerminalOptions::new(),
            token: random_token().into(),
            hosts: Arc::default(),
            any_host: false,
        }
    }

    /// What each session asks for: the terminal type, and a command instead of a shell. The
    /// size comes from the browser's window.
    #[must_use]
    pub fn options(mut self, options: TerminalOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets the access token instead of a random one.
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = token.into().into();
        self
    }

    /// Also answers requests for `host` (a name or an address, without the port). By default
    /// only loopback addresses and `localhost` are answered: a page of another site whose
    /// name an attacker points at this address (DNS rebinding) is refused by its `Host`.
    #[must_use]
    pub fn allow_host(mut self, host: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.hosts).push(host.into().to_ascii_lowercase());
        self
    }

    /// Answers requests for any host: for a terminal served only behind TLS, where the
    /// browser checks the name it asked for against the server's certificate, which a page
    /// whose name an attacker points at this address cannot pass.
    #[must_use]
    pub fn any_host(mut self) -> Self {
        self.any_host = true;
        self
    }

    /// Whether the request's `Host` is one this terminal answers.
    fn host_allowed(&self, headers: &HeaderMap) -> bool {
        self.any_host || crate::origin::host_allowed(headers, &self.hosts)
    }

    /// The access token pages must carry (`?token=…`).
    pub fn access_token(&self) -> &str {
        &self.token
    }

    /// The web application: `GET /` (the page), its assets, and `GET /socket` (the WebSocket).
    pub fn into_router(self) -> Router {
        self.routes("")
    }

    /// The web application under `prefix` (`/terminal`: the page at `/terminal/`, its
    /// WebSocket at `/terminal/socket`), to share a port with other routes; `/terminal`
    /// itself redirects to the page.
    ///
    /// # Panics
    /// If `prefix` does not start with `/`, ends with `/`, or holds a `{`, `}` or `?`.
    pub fn into_router_at(self, prefix: &str) -> Router {
        assert!(
            prefix.len() > 1
                && prefix.starts_with('/')
                && !prefix.ends_with('/')
                && !prefix.contains(['{', '}', '?']),
            "a web terminal's prefix is a path like /terminal, not {prefix:?}"
        );
        let page = format!("{prefix}/");
        self.routes(prefix).route(
            prefix,
            get(move |uri: axum::http::Uri| async move {
                let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
                axum::response::Redirect::permanent(&format!("{page}{query}"))
            }),
        )
    }

    fn routes(self, prefix: &str) -> Router {
        Router::new()
            .route(&format!("{prefix}/"), get(page))
            .route(
                &format!("{prefix}/terminal.mjs"),
                get(|| async { asset(TERMINAL_MJS, "text/javascript") }),
            )
            .route(
                &format!("{prefix}/xterm.mjs"),
                get(|| async { asset(XTERM_MJS, "text/javascript") }),
            )
            .route(
                &format!("{prefix}/addon-fit.mjs"),
                get(|| async { asset(FIT_MJS, "text/javascript") }),
            )
            .route(
                &format!("{prefix}/xterm.css"),
                get(|| async { asset(XTERM_CSS, "text/css") }),
            )
            .route(&format!("{prefix}/socket"), get(socket))
            .with_state(self)
    }

    async fn open(&self, cols: u16, rows: u16) -> Result<TerminalSession, String> {
        let client = match &self.source {
            Source::Client(c) => c.clone(),
            Source::Persistent(c) => tokio::time::timeout(CONNECT_WAIT, c.connected())
                .await
                .map_err(|_| "not connected to the server".to_owned())?,
        };
        client
            .terminal(self.options.clone().size(cols, rows))
            .await
            .map_err(|e| e.to_string())
    }

    fn allows(&self, token: Option<&str>) -> bool {
        token.is_some_and(|t| constant_time_eq(t.as_bytes(), self.token.as_bytes()))
    }
}

/// 128 random bits from the operating system, in hex.
fn random_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'";

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=3600"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

#[derive(Deserialize)]
struct PageQuery {
    token: Option<String>,
}

async fn page(
    State(web): State<WebTerminal>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    if !web.host_allowed(&headers) {
        return wrong_host();
    }
    if !web.allows(q.token.as_deref()) {
        return denied();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        INDEX_HTML,
    )
        .into_response()
}

fn wrong_host() -> Response {
    crate::logging::limited("web-terminal-host", || {
        tracing::warn!("web terminal: request for a host it does not answer refused");
    });
    (
        StatusCode::MISDIRECTED_REQUEST,
        "this terminal answers loopback addresses and the hosts it was told to allow (WebTerminal::allow_host)\n",
    )
        .into_response()
}

fn denied() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        "open this terminal with the address that carries its access token (…/?token=…)\n",
    )
        .into_response()
}

#[derive(Deserialize)]
struct SocketQuery {
    token: Option<String>,
    cols: Option<u16>,
    rows: Option<u16>,
}

async fn socket(
    State(web): State<WebTerminal>,
    Query(q): Query<SocketQuery>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !web.host_allowed(&headers) {
        return wrong_host();
    }
    if !web.allows(q.token.as_deref()) {
        return denied();
    }
    if !crate::origin::same_origin(&headers) {
        crate::logging::limited("web-terminal-origin", || {
            tracing::warn!(origin = ?headers.get(header::ORIGIN), "web terminal: WebSocket from another origin refused");
        });
        return (
            StatusCode::FORBIDDEN,
            "a WebSocket from another origin is refused\n",
        )
            .into_response();
    }
    let cols = q.cols.unwrap_or(80).clamp(1, 1000);
    let rows = q.rows.unwrap_or(24).clamp(1, 1000);
    upgrade.on_upgrade(move |ws| relay(web, ws, cols, rows))
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Control {
    Resize { cols: u16, rows: u16 },
}

async fn relay(web: WebTerminal, mut ws: WebSocket, cols: u16, rows: u16) {
    let TerminalSession { input, mut output } = match web.open(cols, rows).await {
        Ok(s) => s,
        Err(e) => {
            crate::logging::limited("web-terminal-session", || {
                tracing::warn!(error = %e, "web terminal: no session");
            });
            let msg = serde_json::json!({"type": "error", "message": e}).to_string();
            let _ = ws.send(Message::Text(msg.into())).await;
            let _ = ws.send(Message::Close(None)).await;
            return;
        }
    };
    use futures_util::{SinkExt, StreamExt};
    let (mut to_page, mut from_page) = ws.split();
    // Output goes out on a task of its own: a page that stops reading blocks only that task,
    // and its close (or a lost connection) is still seen below.
    let mut writer = tokio::spawn(async move {
        while let Some(bytes) = output.next().await {
            // Sending waits for the browser: a slow page slows the program, nothing piles up.
            if to_page.send(Message::Binary(bytes)).await.is_err() {
                return;
            }
        }
        let status = output.exit_status();
        let msg = serde_json::json!({"type": "exit", "status": status}).to_string();
        let _ = to_page.send(Message::Text(msg.into())).await;
        let _ = to_page.send(Message::Close(None)).await;
    });
    loop {
        tokio::select! {
            msg = from_page.next() => match msg {
                Some(Ok(Message::Binary(data))) => {
                    if input.write(data).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<Control>(&text) {
                    Ok(Control::Resize { cols, rows }) => {
                        let _ = input.resize(cols.clamp(1, 1000), rows.clamp(1, 1000)).await;
                    }
                    Err(e) => tracing::debug!(error = %e, "web terminal: unknown control message"),
                },
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                // The page was closed or went away: hang up.
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    writer.abort();
                    let _ = input.close().await;
                    return;
                }
            },
            _ = &mut writer => break,
        }
    }
    let _ = input.close().await;
}
