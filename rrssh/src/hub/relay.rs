//! Caller access through a hub: a client connected to the hub calls a peer connected to the
//! same hub, by name, without reaching it directly (it may be behind NAT).
//!
//! - `GET /.well-known/rrssh/peers` lists the peers the caller may call;
//! - `STREAM /.well-known/rrssh/events` follows who connects and leaves (see
//!   [`watch`](super::watch));
//! - `METHOD /.well-known/rrssh/peers/{name}/{path…}` relays the call to `METHOD /{path…}` on
//!   that peer, with its query, headers, body (streamed both ways) and the deadline left.
//!
//! A caller may reach the peer `name` if its `authorized_keys` line grants the scope
//! `call:name` (`call:*` for every peer); others get 403. The peer sees the caller in the
//! `rrssh-caller-user` and `rrssh-caller-fingerprint` headers, set by the hub.

use std::time::UNIX_EPOCH;

use http::{HeaderValue, StatusCode, Uri};
use serde::{Deserialize, Serialize};
use tower_service::Service;

use super::Registry;
use crate::client::Error;
use crate::extract::{Deadline, TIMEOUT_HEADER};
use crate::routing::MethodRouter;
use crate::{ApiError, Body, IntoResponse, Json, Path, Peer, Request, Response, Router};

/// The path of the peer listing; relayed calls go under it.
pub const PEERS_PATH: &str = "/.well-known/rrssh/peers";

/// A peer as the listing shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PeerListing {
    /// The service name.
    pub name: String,
    /// The SSH user it logged in as.
    pub user: String,
    /// Its key's fingerprint.
    pub fingerprint: String,
    /// When it connected, in seconds since the Unix epoch.
    pub connected_at: u64,
    /// The calls this hub relayed to it (zeros for a peer on another hub of a cluster).
    #[serde(default)]
    pub stats: super::stats::ServiceStats,
}

fn may_call(caller: &Peer, name: &str) -> bool {
    caller.has_scope(&format!("call:{name}"))
}

/// The peers `caller` may call, sorted by name.
pub(crate) fn listing(registry: &Registry, caller: &Peer) -> Vec<PeerListing> {
    registry
        .peers()
        .into_iter()
        .filter_map(|p| {
            let name = p.name?;
            may_call(caller, &name).then(|| PeerListing {
                name,
                user: p.peer.user().to_owned(),
                fingerprint: p.peer.fingerprint().to_owned(),
                connected_at: p
                    .connected_at
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
                stats: p.stats,
            })
        })
        .collect()
}

/// The routes of caller access for `registry` (see the [module docs](self)); a hub serves them
/// when built with [`Server::relay`](crate::Server::relay).
pub fn relay_router(registry: Registry) -> Router {
    let registry_for_watch = registry.clone();
    let list = {
        let registry = registry.clone();
        move |caller: Peer| {
            let registry = registry.clone();
            async move { Json(listing(&registry, &caller)) }
        }
    };
    let relay = move |caller: Peer, Path((name, _)): Path<(String, String)>, req: Request| {
        let registry = registry.clone();
        // The rest of the path as it was sent: `%2F` and `%3F` stay encoded for the peer.
        let raw = req.uri().path();
        let rest = raw
            .strip_prefix(PEERS_PATH)
            .and_then(|p| p.strip_prefix('/'))
            .and_then(|p| p.split_once('/'))
            .map_or("", |(_, rest)| rest)
            .to_owned();
        async move { relay_call(&registry, &caller, &name, &rest, req).await }
    };
    let mut any = MethodRouter::new();
    for m in ["GET", "POST", "PUT", "PATCH", "DELETE", "STREAM"] {
        any = any.on(crate::method::parse(m).unwrap_or_default(), relay.clone());
    }
    Router::new()
        .introspection(false)
        .route(PEERS_PATH, crate::routing::get(list))
        .route(&format!("{PEERS_PATH}/{{name}}/{{*rest}}"), any)
        .merge(super::watch::watch_router(registry_for_watch))
}

/// Relays `req` from `caller` to `METHOD /{rest}` on the peer `name`, checking the caller's
/// `call:NAME` scope; every failure is an error response (403, 503, 504, 502).
pub(crate) async fn relay_call(
    registry: &Registry,
    caller: &Peer,
    name: &str,
    rest: &str,
    req: Request,
) -> Response {
    if !may_call(caller, name) {
        crate::logging::limited("relay-refused", || {
            tracing::warn!(caller = %caller.fingerprint(), peer = name, "relay refused");
        });
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "key {} may not call the peer `{name}` (it needs the scope call:{name})",
                caller.fingerprint()
            ),
        )
        .into_response();
    }
    let (mut parts, body) = req.into_parts();
    let target = match parts.uri.query() {
        Some(q) => format!("/{rest}?{q}"),
        None => format!("/{rest}"),
    };
    parts.uri = match target.parse::<Uri>() {
        Ok(u) => u,
        Err(e) => return ApiError::bad_request(format!("bad target: {e}")).into_response(),
    };
    // The budget left, not the one the caller started with.
    if let Some(left) = Deadline::of(&parts.extensions, &parts.headers)
        .ok()
        .and_then(|d| d.remaining())
    {
        parts.headers.insert(
            TIMEOUT_HEADER,
            crate::proto::Budget::from_duration(left).to_header_value(),
        );
    }
    // Only the hub says who calls: whatever the caller sent under these names goes, and a
    // value that cannot be a header is left out rather than replaced by the caller's.
    drop_caller_headers(&mut parts.headers);
    for (h, v) in [
        ("rrssh-caller-user", caller.user()),
        ("rrssh-caller-fingerprint", caller.fingerprint()),
    ] {
        if let Ok(v) = HeaderValue::from_str(v) {
            parts.headers.insert(h, v);
        }
    }
    // A caller's share of the peer: the rest stays for the others.
    let policy = registry.relay_policy;
    let ticket = match registry
        .shares
        .take(name, caller.fingerprint(), policy.calls_per_caller)
    {
        Ok(t) => t,
        Err(held) => {
            crate::logging::limited("relay-share", || {
                tracing::warn!(caller = %caller.fingerprint(), peer = name, held, "relay share used up");
            });
            return ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "key {} has {held} calls in flight to the peer `{name}`, its share on this hub (RelayPolicy::calls_per_caller); try again later",
                    caller.fingerprint()
                ),
            )
            .into_response();
        }
    };
    let has_deadline = parts.headers.contains_key(TIMEOUT_HEADER);
    let mut out = Request::new(body);
    *out.method_mut() = parts.method;
    *out.uri_mut() = parts.uri;
    *out.headers_mut() = parts.headers;
    let call = registry.peer(name).call(out);
    let mut waiting = registry.counters_of(name).map(|c| c.begin());
    let outcome = if has_deadline {
        call.await
    } else {
        // No deadline of its own: the answer must begin within the relay's; dropping the call
        // cancels it at the peer.
        match tokio::time::timeout(policy.answer_timeout, call).await {
            Ok(outcome) => outcome,
            Err(_) => {
                if let Some(w) = waiting.take() {
                    w.answered(None);
                }
                return ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!(
                        "the peer `{name}` did not begin its answer within {} s (the hub's RelayPolicy::answer_timeout; send rrssh-timeout to set a deadline)",
                        policy.answer_timeout.as_secs_f64()
                    ),
                )
                .into_response();
            }
        }
    };
    let answered = answer(outcome);
    if let Some(w) = waiting {
        w.answered(Some(answered.status().as_u16()));
    }
    answered.map(|b| Body::new(super::share::Ticketed::new(b, ticket)))
}

/// Removes the `rrssh-caller-*` headers a caller sent: only a hub says who calls.
pub(crate) fn drop_caller_headers(headers: &mut http::HeaderMap) {
    let forged: Vec<_> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("rrssh-caller-"))
        .cloned()
        .collect();
    for h in forged {
        headers.remove(h);
    }
}

/// A relayed call's outcome as a response: the peer's answer, or 503, 504 or 502.
pub(crate) fn answer(outcome: Result<Response, Error>) -> Response {
    match outcome {
        Ok(res) => res,
        Err(Error::Unavailable(why)) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why).into_response()
        }
        Err(Error::Timeout) => crate::routing::deadline_exceeded(),
        Err(Error::Status { status, body }) => ApiError::new(status, body.message).into_response(),
        Err(e) => ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
