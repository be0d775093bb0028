#![doc = include_str!("../docs/gateway.md")]

mod body;
#[cfg(feature = "openapi")]
mod openapi;
pub(crate) mod serve;
mod tokens;
mod upstream;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::IntoResponse as _;
use http::header::{self, HeaderName};
use http::{HeaderValue, Method, StatusCode};

use self::body::RelayBody;
pub use self::tokens::{MIN_TOKEN_LEN, Tokens, TokensError};
use self::upstream::Upstream;
use crate::auth::Grants;
use crate::extract::{PeerInfo, TIMEOUT_HEADER};
use crate::hub::Registry;
use crate::hub::relay::{listing, relay_call};
use crate::response::APPLICATION_NDJSON;
use crate::{ApiError, Body, IntoResponse, Peer};

/// The HTTP path prefix under which the gateway serves the peers.
pub const PEERS_PREFIX: &str = "/peers";

/// An HTTP gateway to the peers connected to a hub, or to the peer of one connection (see
/// the [module docs](self)).
#[derive(Debug, Clone)]
pub struct Gateway {
    upstream: Upstream,
    tokens: Tokens,
    anonymous: Option<Peer>,
    /// Host names besides loopback that anonymous callers may use.
    allowed_hosts: Vec<String>,
    default_timeout: Option<Duration>,
    http: serve::HttpLimits,
}

impl Gateway {
    /// A gateway to the peers of `registry` (from [`Hub::registry`](crate::Hub::registry)).
    /// It admits nobody until given [`tokens`](Self::tokens) or an
    /// [`anonymous`](Self::anonymous) caller.
    pub fn new(registry: Registry) -> Self {
        Self::with_upstream(Upstream::Hub(registry))
    }

    /// A gateway to the peer at the other end of one connection (a
    /// [`Client`](crate::Client) or [`ReconnectingClient`](crate::ReconnectingClient), or any
    /// client service): `METHOD /PATH` over HTTP is the call `METHOD /PATH` on it, so every
    /// node of a fleet can offer its local programs an HTTP door into its SSH connection. The
    /// same token rules apply (any known token admits; scopes are for hubs), as do the NDJSON
    /// streams, deadlines, cancellation and error JSON.
    pub fn to<S>(service: S) -> Self
    where
        S: tower_service::Service<
                crate::Request,
                Response = crate::Response,
                Error = crate::client::Error,
            > + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        Self::with_upstream(Upstream::One(tower::util::BoxCloneSyncService::new(
            service,
        )))
    }

    fn with_upstream(upstream: Upstream) -> Self {
        Self {
            upstream,
            tokens: Tokens::new(),
            anonymous: None,
            allowed_hosts: Vec::new(),
            default_timeout: None,
            http: serve::HttpLimits::default(),
        }
    }

    /// The bearer tokens callers present (`Authorization: Bearer TOKEN`), with their scopes.
    pub fn tokens(mut self, tokens: Tokens) -> Self {
        self.tokens = tokens;
        self
    }

    /// Admits callers without a token, as the caller `anonymous` holding `scopes`
    /// (`call:*` opens every peer). Only for a gateway bound to a trusted address, or behind
    /// an authentication layer of your own: a layer may also insert a [`Peer`] into the request
    /// extensions, and the gateway then takes that as the caller.
    ///
    /// Web pages are kept out, as the web terminal keeps them out: an anonymous request must
    /// be sent to a loopback name (`localhost`, `127.0.0.1`, `[::1]`) or to a name given to
    /// [`allow_host`](Self::allow_host) (so a page whose DNS name was rebound to the gateway's
    /// address is refused), and an `Origin`, when there is one, must name that host (so a
    /// cross-site form or `fetch` is refused). Both are answered 403.
    pub fn anonymous(mut self, scopes: Grants) -> Self {
        self.anonymous = Some(Peer::new(
            PeerInfo::new("anonymous", "anonymous").scopes(scopes),
        ));
        self
    }

    /// A host name (without port) anonymous callers may send requests to, besides the
    /// loopback names: the name the gateway is reached by on a trusted network.
    pub fn allow_host(mut self, name: impl Into<String>) -> Self {
        self.allowed_hosts.push(name.into());
        self
    }

    /// The deadline given to calls whose request has no `rrssh-timeout` header (none by default).
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = Some(timeout);
        self
    }

    /// How long a client may take to send a request's head (default 10 s), counted from the
    /// end of the previous answer on a kept-alive connection; slower connections (slowloris)
    /// and idle kept-alive ones are closed. Applies to [`serve`](Self::serve).
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.http.header_timeout = timeout;
        self
    }

    /// How long a connection may go without a byte either way (default 120 s) before it is
    /// closed, even with a request in flight (a call to a peer that stays silent that long, a
    /// stream that pauses that long). Applies to [`serve`](Self::serve).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.http.idle_timeout = timeout;
        self
    }

    /// How many HTTP connections the gateway holds at once (default 512); the next is answered
    /// `503` and closed. Applies to [`serve`](Self::serve).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.http.max_connections = n;
        self
    }

    /// The gateway as an axum [`Router`](axum::Router): nest or merge it into an HTTP server of
    /// your own, or add tower-http layers (CORS, tracing, compression) to it.
    pub fn into_router(self) -> axum::Router {
        if let Upstream::One(_) = self.upstream {
            return axum::Router::new()
                .route("/", axum::routing::any(upstream::forward))
                .route("/{*rest}", axum::routing::any(upstream::forward))
                .with_state(Arc::new(self));
        }
        let relay = axum::routing::any(relay);
        axum::Router::new()
            .route(PEERS_PREFIX, axum::routing::get(list))
            .route(&format!("{PEERS_PREFIX}/{{name}}"), relay.clone())
            .route(&format!("{PEERS_PREFIX}/{{name}}/"), relay.clone())
            .route(&format!("{PEERS_PREFIX}/{{name}}/{{*rest}}"), relay)
            .with_state(Arc::new(self))
    }

    /// Serves HTTP/1.1 on `listener`, within its [header](Self::header_timeout) and
    /// [idle](Self::idle_timeout) timeouts and its [connection cap](Self::max_connections).
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        self.serve_with_shutdown(listener, std::future::pending())
            .await
    }

    /// Serves HTTP/1.1 on `listener` until `signal` completes, then lets the calls in flight
    /// finish.
    pub async fn serve_with_shutdown<F>(
        self,
        listener: tokio::net::TcpListener,
        signal: F,
    ) -> std::io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let limits = self.http;
        serve::serve(listener, self.into_router(), limits, signal).await;
        Ok(())
    }

    /// The caller of an HTTP request: a [`Peer`] a layer put in the extensions, else the holder
    /// of the bearer token, else the anonymous caller.
    fn caller(&self, req: &axum::extract::Request) -> Result<Peer, Refused> {
        if let Some(peer) = req.extensions().get::<Peer>() {
            return Ok(peer.clone());
        }
        let Some(value) = req.headers().get(header::AUTHORIZATION) else {
            let anonymous = self.anonymous.clone().ok_or(Refused::Unauthorized(
                "this gateway needs `Authorization: Bearer TOKEN`",
            ))?;
            if !crate::origin::host_allowed(req.headers(), &self.allowed_hosts) {
                crate::logging::limited("gateway-host", || {
                    tracing::warn!(host = ?req.headers().get(header::HOST), "gateway: anonymous request to a host not allowed; refused");
                });
                return Err(Refused::Forbidden(
                    "anonymous calls are taken only on loopback names and allowed hosts",
                ));
            }
            if !crate::origin::same_origin(req.headers()) {
                crate::logging::limited("gateway-origin", || {
                    tracing::warn!(origin = ?req.headers().get(header::ORIGIN), "gateway: anonymous request from another origin; refused");
                });
                return Err(Refused::Forbidden(
                    "anonymous calls from a web page of another origin are refused",
                ));
            }
            return Ok(anonymous);
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        let Some(token) = token else {
            return Err(Refused::Unauthorized(
                "the Authorization header must be `Bearer TOKEN`",
            ));
        };
        self.tokens
            .find(token.as_bytes())
            .ok_or(Refused::Unauthorized("unknown bearer token"))
    }
}

impl Gateway {
    /// An HTTP request as a call: STREAM for NDJSON, without the hop's headers, with the
    /// default deadline if it has none; and whether the answer is a stream.
    fn prepare(
        &self,
        req: axum::extract::Request,
    ) -> ((http::request::Parts, axum::body::Body), bool) {
        let gw = self;
        let (mut parts, body) = req.into_parts();
        let wants_ndjson = parts
            .headers
            .get(header::ACCEPT)
            .is_some_and(|v| v.as_bytes().starts_with(APPLICATION_NDJSON.as_bytes()));
        if parts.method == Method::GET && wants_ndjson {
            parts.method = crate::method::STREAM.clone();
        }
        let stream = parts.method == *crate::method::STREAM;
        for h in HOP_HEADERS {
            parts.headers.remove(h);
        }
        if let Some(t) = gw.default_timeout
            && !parts.headers.contains_key(TIMEOUT_HEADER)
        {
            parts.headers.insert(
                TIMEOUT_HEADER,
                crate::proto::Budget::from_duration(t).to_header_value(),
            );
        }
        ((parts, body), stream)
    }
}

/// Why the gateway takes no call from a request.
#[derive(Debug, Clone, Copy)]
enum Refused {
    /// No caller: 401, asking for a bearer token.
    Unauthorized(&'static str),
    /// A caller the gateway will not serve from where the request came: 403.
    Forbidden(&'static str),
}

impl Refused {
    fn response(self) -> crate::Response {
        match self {
            Refused::Unauthorized(why) => unauthorized(why),
            Refused::Forbidden(why) => ApiError::new(StatusCode::FORBIDDEN, why).into_response(),
        }
    }
}

fn unauthorized(message: &str) -> crate::Response {
    let mut res = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"rrssh\""),
    );
    res
}

fn to_http(res: crate::Response, stream: bool) -> axum::response::Response {
    let stream = stream && res.status().is_success();
    res.map(|b| axum::body::Body::new(RelayBody::new(b, stream)))
}

async fn list(
    State(gw): State<Arc<Gateway>>,
    req: axum::extract::Request,
) -> axum::response::Response {
    match gw.caller(&req) {
        Ok(caller) => match &gw.upstream {
            Upstream::Hub(registry) => axum::Json(listing(registry, &caller)).into_response(),
            Upstream::One(_) => to_http(ApiError::not_found("no listing").into_response(), false),
        },
        Err(why) => to_http(why.response(), false),
    }
}

/// Request headers that belong to the HTTP hop, not to the call.
const HOP_HEADERS: [HeaderName; 8] = [
    header::AUTHORIZATION,
    header::HOST,
    header::CONNECTION,
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::CONTENT_LENGTH,
    header::EXPECT,
];

async fn relay(
    State(gw): State<Arc<Gateway>>,
    req: axum::extract::Request,
) -> axum::response::Response {
    let caller = match gw.caller(&req) {
        Ok(c) => c,
        Err(why) => return to_http(why.response(), false),
    };
    let path = req.uri().path();
    let after = path
        .strip_prefix(PEERS_PREFIX)
        .and_then(|p| p.strip_prefix('/'))
        .unwrap_or_default();
    let (name, rest) = after.split_once('/').unwrap_or((after, ""));
    let Ok(name) = percent_encoding::percent_decode_str(name).decode_utf8() else {
        return to_http(
            ApiError::bad_request("the peer name is not UTF-8").into_response(),
            false,
        );
    };
    let (name, rest) = (name.into_owned(), rest.to_owned());
    #[cfg(feature = "openapi")]
    if rest == "openapi.json"
        && req.method() == Method::GET
        && let Upstream::Hub(registry) = &gw.upstream
    {
        return to_http(
            openapi::peer_document(registry, &caller, &name).await,
            false,
        );
    }

    let (parts, stream) = gw.prepare(req);
    let (parts, body) = parts;
    tracing::debug!(caller = caller.user(), peer = %name, method = %parts.method, path = %parts.uri.path(), "gateway call");
    let req = crate::Request::from_parts(parts, Body::new(body));
    let Upstream::Hub(registry) = &gw.upstream else {
        return to_http(ApiError::not_found("no such route").into_response(), false);
    };
    let res = relay_call(registry, &caller, &name, &rest, req).await;
    to_http(res, stream)
}
