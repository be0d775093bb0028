//! The built-in route listing: `GET /.well-known/rrssh/routes` answers the router's routes
//! (method, path, summary, argument and output types), for tools such as `rrssh routes`.
//!
//! It is a route like any other, added by [`Router::new`](super::Router::new), so layers added
//! afterwards (authorization included) apply to it; [`Router::introspection`](super::Router::introspection) turns it off.
//! A route with a scope is listed only to callers whose key holds that scope.

use std::sync::Arc;

use http::request::Parts;
use serde::Serialize;

use super::{ArgInfo, RouteInfo};
use crate::extract::FromRequestParts;
use crate::{ApiError, Json};

/// The path of the route listing.
pub const ROUTES_PATH: &str = "/.well-known/rrssh/routes";

/// One route, as the listing shows it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct RouteSummary {
    /// The method (`GET`, …, `STREAM`).
    pub method: String,
    /// The path template.
    pub path: String,
    /// The handler's name, for attribute routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The first paragraph of the handler's doc comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The arguments of its typed call: `name: Type (path|params|json|body)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// The handler's return type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The scope it requires, if its attribute named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

fn arg(a: &ArgInfo) -> String {
    let kind = serde_json::to_value(a.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!("{}: {} ({kind})", a.name, a.ty)
}

/// Whether `path` is one of the routes every router serves (listing, OpenAPI document).
pub(super) fn is_builtin(path: &str) -> bool {
    path == ROUTES_PATH || path == crate::openapi::OPENAPI_PATH
}

/// The OpenAPI document of a router's paths and attribute infos.
#[cfg(feature = "openapi")]
pub(super) fn document<'a>(
    title: &str,
    version: &str,
    paths: impl Iterator<Item = (&'a str, Vec<&'a http::Method>)>,
    infos: &'a [RouteInfo],
) -> serde_json::Value {
    use crate::openapi::Operation;
    use crate::openapi::probe::SchemaFn;
    let mut ops = Vec::new();
    for (path, methods) in paths {
        for m in methods {
            let info = infos.iter().find(|i| i.path == path && i.method() == *m);
            ops.push(Operation {
                method: m.as_str(),
                path,
                name: info.map(|i| i.name),
                summary: info.and_then(|i| i.summary),
                scope: info.and_then(|i| i.scope),
                schemas: info.map_or(SchemaFn::NONE, |i| i.schemas),
            });
        }
    }
    crate::openapi::document(title, version, ops)
}

/// The listing of a router's paths and attribute infos.
fn listing<'a>(
    paths: impl Iterator<Item = (&'a str, Vec<&'a http::Method>)>,
    infos: &[RouteInfo],
) -> Arc<Vec<RouteSummary>> {
    let mut out = Vec::new();
    for (path, methods) in paths {
        if is_builtin(path) {
            continue;
        }
        for m in methods {
            let info = infos.iter().find(|i| i.path == path && i.method() == *m);
            out.push(RouteSummary {
                method: m.as_str().to_owned(),
                path: path.to_owned(),
                name: info.map(|i| i.name.to_owned()),
                summary: info.and_then(|i| i.summary.map(str::to_owned)),
                args: info
                    .map(|i| i.args.iter().map(arg).collect())
                    .unwrap_or_default(),
                output: info.map(|i| i.output.to_owned()),
                scope: info.and_then(|i| i.scope.map(str::to_owned)),
            });
        }
    }
    Arc::new(out)
}

/// Put into the request by the router for its built-in routes when introspection is on: the
/// listing, and (feature `openapi`) the document.
#[derive(Clone)]
pub(super) struct Listing(
    pub(super) Arc<Vec<RouteSummary>>,
    #[cfg(feature = "openapi")] Arc<LazyDocument>,
);

/// The OpenAPI document, built on its first request (not when the router is compiled).
#[cfg(feature = "openapi")]
pub(super) struct LazyDocument {
    paths: Vec<(String, Vec<http::Method>)>,
    infos: Vec<RouteInfo>,
    doc: std::sync::OnceLock<serde_json::Value>,
}

#[cfg(feature = "openapi")]
impl LazyDocument {
    fn get(&self) -> &serde_json::Value {
        self.doc.get_or_init(|| {
            let paths = self
                .paths
                .iter()
                .map(|(p, m)| (p.as_str(), m.iter().collect()));
            document("rrssh service", "1", paths, &self.infos)
        })
    }
}

impl Listing {
    pub(super) fn new<'a>(
        paths: impl Iterator<Item = (&'a str, Vec<&'a http::Method>)> + Clone,
        infos: &'a [RouteInfo],
    ) -> Self {
        Self(
            listing(paths.clone(), infos),
            #[cfg(feature = "openapi")]
            Arc::new(LazyDocument {
                paths: paths
                    .filter(|(p, _)| !is_builtin(p))
                    .map(|(p, m)| (p.to_owned(), m.into_iter().cloned().collect()))
                    .collect(),
                infos: infos.to_vec(),
                doc: std::sync::OnceLock::new(),
            }),
        )
    }
}

/// The listing handler's argument: the listing, if the router put one in, and the caller.
pub(super) struct MaybeListing(Option<Listing>, Option<crate::Peer>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeListing {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts.extensions.get::<Listing>().cloned(),
            parts.extensions.get::<crate::Peer>().cloned(),
        ))
    }
}

pub(super) async fn routes(listing: MaybeListing) -> Result<Json<Vec<RouteSummary>>, ApiError> {
    match listing.0 {
        // A route's scope is its own business: callers without it do not see the route.
        Some(Listing(l, ..)) => Ok(Json(
            l.iter()
                .filter(|r| {
                    r.scope
                        .as_deref()
                        .is_none_or(|s| listing.1.as_ref().is_some_and(|p| p.has_scope(s)))
                })
                .cloned()
                .collect(),
        )),
        None => Err(ApiError::not_found(format!(
            "no route for GET {ROUTES_PATH}"
        ))),
    }
}

/// `GET /.well-known/rrssh/openapi.json`: the router's OpenAPI document.
#[cfg(feature = "openapi")]
pub(super) async fn openapi(listing: MaybeListing) -> Result<Json<serde_json::Value>, ApiError> {
    match listing.0 {
        Some(Listing(_, doc)) => {
            // As in the listing, a route's scope is its own business: operations the caller
            // lacks the scope for are left out.
            let mut doc = doc.get().clone();
            let holds = |s: &str| listing.1.as_ref().is_some_and(|p| p.has_scope(s));
            if let Some(paths) = doc
                .get_mut("paths")
                .and_then(serde_json::Value::as_object_mut)
            {
                for item in paths.values_mut() {
                    if let Some(ops) = item.as_object_mut() {
                        ops.retain(|_, op| {
                            op.get("x-rrssh-scope")
                                .and_then(serde_json::Value::as_str)
                                .is_none_or(holds)
                        });
                    }
                }
                paths.retain(|_, item| item.as_object().is_some_and(|o| !o.is_empty()));
            }
            Ok(Json(doc))
        }
        None => Err(ApiError::not_found(format!(
            "no route for GET {}",
            crate::openapi::OPENAPI_PATH
        ))),
    }
}
