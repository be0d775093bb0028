//! Prometheus metrics of a server (the `metrics` feature), in the text exposition format:
//! give [`Metrics`] to [`Server::observe`](crate::Server::observe), then serve
//! [`Metrics::render`] (the CLI's `--admin ADDR` serves it at `/metrics`).
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `rrssh_logins_total` | `result` (`accepted`, `refused`), `kind` (`key`, `certificate`), `carrier` (`ssh`, `websocket`, `ssh on the web port`) | verified logins |
//! | `rrssh_calls_total` | `route`, `method`, `status` | calls answered |
//! | `rrssh_call_duration_seconds` | `route`, `method` | from a call's start to its answer's end |
//! | `rrssh_call_request_bytes_total`, `rrssh_call_response_bytes_total` | `route`, `method` | body bytes |
//! | `rrssh_calls_refused_total` | `reason` | calls refused by a budget before their handler |
//! | `rrssh_tunnels_total` | `result` | `-L` tunnels opened and refused |
//! | `rrssh_terminals_total` | `result` | terminal sessions and commands opened, closed, refused |
//! | `rrssh_connections_total` | `role` (`service`, `caller`) | rrssh connections registered |
//! | `rrssh_connections` | `role` | rrssh connections open now |
//! | `rrssh_budget_held_bytes`, `rrssh_budget_limit_bytes` | | what peers make the server hold |
//!
//! Every label takes a bounded set of values: a route is its template (`/users/{id}`, or
//! `unmatched`), never the path a peer sent; a method outside the standard ones is `other`;
//! no label holds a user name, key or address (those go to the [audit log](crate::audit)).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::hub::HubEvent;
use crate::observe::{Event, Observer};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    result: &'static str,
    kind: &'static str,
    carrier: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabels {
    role: &'static str,
}

fn latency_histogram() -> Histogram {
    // 100 µs to about 26 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 19))
}

/// A server's Prometheus metrics (see the [module docs](self)). Cheap to clone: clones count
/// into the same registry.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    logins: Family<LoginLabels, Counter>,
    calls: Family<CallLabels, Counter>,
    durations: Family<RouteLabels, Histogram, fn() -> Histogram>,
    request_bytes: Family<RouteLabels, Counter>,
    response_bytes: Family<RouteLabels, Counter>,
    refused: Family<ReasonLabels, Counter>,
    tunnels: Family<ResultLabels, Counter>,
    terminals: Family<ResultLabels, Counter>,
    connections_total: Family<RoleLabels, Counter>,
    connections: Family<RoleLabels, Gauge>,
    budget_held: Gauge,
    budget_limit: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Metrics with nothing counted yet.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rrssh");
        let logins = Family::default();
        registry.register(
            "logins",
            "Verified logins, let in or refused",
            logins.clone(),
        );
        let calls = Family::default();
        registry.register("calls", "Calls answered", calls.clone());
        let durations = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "call_duration_seconds",
            "From a call's start to the end of its answer",
            durations.clone(),
        );
        let request_bytes = Family::default();
        registry.register(
            "call_request_bytes",
            "Request body bytes of calls whose body came whole with their head",
            request_bytes.clone(),
        );
        let response_bytes = Family::default();
        registry.register(
            "call_response_bytes",
            "Answer body bytes sent",
            response_bytes.clone(),
        );
        let refused = Family::default();
        registry.register(
            "calls_refused",
            "Calls refused by a budget before their handler ran",
            refused.clone(),
        );
        let tunnels = Family::default();
        registry.register("tunnels", "TCP tunnels opened or refused", tunnels.clone());
        let terminals = Family::default();
        registry.register(
            "terminals",
            "Terminal sessions and commands opened, closed or refused",
            terminals.clone(),
        );
        let connections_total = Family::default();
        registry.register(
            "connections",
            "rrssh connections registered",
            connections_total.clone(),
        );
        let connections = Family::default();
        registry.register(
            "connections_open",
            "rrssh connections open now",
            connections.clone(),
        );
        let budget_held = Gauge::default();
        registry.register(
            "budget_held_bytes",
            "What peers make the server hold (request bodies)",
            budget_held.clone(),
        );
        let budget_limit = Gauge::default();
        registry.register(
            "budget_limit_bytes",
            "The most all peers together may make the server hold",
            budget_limit.clone(),
        );
        Self(Arc::new(Inner {
            registry,
            logins,
            calls,
            durations,
            request_bytes,
            response_bytes,
            refused,
            tunnels,
            terminals,
            connections_total,
            connections,
            budget_held,
            budget_limit,
        }))
    }

    /// Counts the connections of `hub` as they come and go, and shows what its budgets hold,
    /// until the hub is gone. Spawns a task on the current runtime.
    pub fn watch(&self, hub: &crate::Hub) {
        let me = self.clone();
        let mut events = hub.events();
        let memory = hub.memory();
        for p in hub.peers().iter().filter(|p| p.hub.is_none()) {
            let role = role(p.name.as_deref());
            me.0.connections.get_or_create(&RoleLabels { role }).inc();
        }
        tokio::spawn(async move {
            use futures_util::StreamExt;
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tokio::select! {
                    e = events.next() => match e {
                        Some(HubEvent::Connected { name, .. }) => {
                            let labels = RoleLabels { role: role(name.as_deref()) };
                            me.0.connections_total.get_or_create(&labels).inc();
                            me.0.connections.get_or_create(&labels).inc();
                        }
                        Some(HubEvent::Disconnected { name, .. }) => {
                            let labels = RoleLabels { role: role(name.as_deref()) };
                            me.0.connections.get_or_create(&labels).dec();
                        }
                        Some(_) => {}
                        None => return,
                    },
                    _ = tick.tick() => {
                        if let Some(m) = &memory {
                            me.0.budget_held.set(i64::try_from(m.held()).unwrap_or(i64::MAX));
                            me.0.budget_limit.set(i64::try_from(m.limit()).unwrap_or(i64::MAX));
                        }
                    }
                }
            }
        });
    }

    /// The metrics in Prometheus's text format (`text/plain; version=0.0.4`, also valid
    /// OpenMetrics).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.0.registry);
        out
    }
}

fn role(name: Option<&str>) -> &'static str {
    if name.is_some() { "service" } else { "caller" }
}

/// A method as a label: the standard ones by name, any other as `other`.
fn method_label(m: &http::Method) -> &'static str {
    match m.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "STREAM" => "STREAM",
        _ => "other",
    }
}

impl Observer for Metrics {
    fn event(&self, event: &Event<'_>) {
        let m = &self.0;
        match event {
            Event::Login {
                certificate,
                refused,
                carrier,
                ..
            } => {
                let labels = LoginLabels {
                    result: if refused.is_some() {
                        "refused"
                    } else {
                        "accepted"
                    },
                    kind: if certificate.is_some() {
                        "certificate"
                    } else {
                        "key"
                    },
                    carrier,
                };
                m.logins.get_or_create(&labels).inc();
            }
            Event::Call {
                method,
                route,
                status,
                duration,
                request_bytes,
                response_bytes,
                ..
            } => {
                let method = method_label(method);
                m.calls
                    .get_or_create(&CallLabels {
                        route: (*route).to_owned(),
                        method,
                        status: *status,
                    })
                    .inc();
                let labels = RouteLabels {
                    route: (*route).to_owned(),
                    method,
                };
                m.durations
                    .get_or_create(&labels)
                    .observe(duration.as_secs_f64());
                if *request_bytes > 0 {
                    m.request_bytes
                        .get_or_create(&labels)
                        .inc_by(*request_bytes);
                }
                if *response_bytes > 0 {
                    m.response_bytes
                        .get_or_create(&labels)
                        .inc_by(*response_bytes);
                }
            }
            Event::Refused { reason, .. } => {
                m.refused.get_or_create(&ReasonLabels { reason }).inc();
            }
            Event::Tunnel { refused, .. } => {
                let result = if refused.is_some() {
                    "refused"
                } else {
                    "opened"
                };
                m.tunnels.get_or_create(&ResultLabels { result }).inc();
            }
            Event::Terminal { ended, refused, .. } => {
                let result = match (refused, ended) {
                    (Some(_), _) => "refused",
                    (None, None) => "opened",
                    (None, Some(_)) => "closed",
                };
                m.terminals.get_or_create(&ResultLabels { result }).inc();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn calls_are_counted_by_template_and_status() {
        let m = Metrics::new();
        for status in [200, 200, 404] {
            m.event(&Event::Call {
                peer: None,
                method: &http::Method::GET,
                route: "/users/{id}",
                status,
                duration: Duration::from_millis(3),
                request_bytes: 0,
                response_bytes: 10,
            });
        }
        m.event(&Event::Call {
            peer: None,
            method: &http::Method::from_bytes(b"BREW").unwrap(),
            route: crate::observe::UNMATCHED,
            status: 405,
            duration: Duration::from_millis(1),
            request_bytes: 0,
            response_bytes: 0,
        });
        let text = m.render();
        assert!(
            text.contains(r#"rrssh_calls_total{route="/users/{id}",method="GET",status="200"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"rrssh_calls_total{route="unmatched",method="other",status="405"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"rrssh_call_response_bytes_total{route="/users/{id}",method="GET"} 30"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"rrssh_call_duration_seconds_count{route="/users/{id}",method="GET"} 3"#
            ),
            "{text}"
        );
    }
}
