use std::fmt;

use serde::{Deserialize, Serialize};

use super::MethodRouter;
use crate::handler::Handler;

/// What a route attribute (`#[get("/users/{id}")]`, …) knows about its handler.
///
/// Implemented by the marker type the attribute emits next to the function (it has the
/// function's name, in the type namespace). Used by [`routes!`](crate::routes) to mount the
/// handler and by the generated `NAME::call` to build typed client calls.
pub trait RouteDef {
    /// Method, path, summary and argument description.
    const INFO: RouteInfo;
    /// The handler's return type; its [`FromResponse`](crate::client::FromResponse) output is
    /// what the typed client call returns.
    type Response;
}

/// Which part of a request an argument of a typed call fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArgKind {
    /// A path capture (`Path<T>`).
    Path,
    /// The query string (`Params<T>`).
    Params,
    /// A JSON body (`Json<T>`).
    Json,
    /// A raw body (`Bytes` or `String`).
    Body,
}

/// One argument of a typed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ArgInfo {
    /// The argument's name (from the handler's binding).
    pub name: &'static str,
    /// Which part of the request it fills.
    pub kind: ArgKind,
    /// Its Rust type, as written.
    pub ty: &'static str,
}

/// A description of a route, as the route attribute saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RouteInfo {
    /// The handler's name.
    pub name: &'static str,
    /// The method (`"GET"`, …, `"STREAM"`).
    pub method: &'static str,
    /// The path template (`"/users/{id}"`).
    pub path: &'static str,
    /// The first paragraph of the handler's doc comment.
    pub summary: Option<&'static str>,
    /// The arguments of its typed call, in call order.
    pub args: &'static [ArgInfo],
    /// The handler's return type, as written.
    pub output: &'static str,
    /// The scope a caller needs, if the attribute named one.
    pub scope: Option<&'static str>,
    /// How the schemas of its inputs and output are made, for the OpenAPI document.
    #[doc(hidden)]
    #[serde(skip)]
    pub schemas: crate::openapi::probe::SchemaFn,
}

impl RouteInfo {
    /// The method as an [`http::Method`].
    pub fn method(&self) -> http::Method {
        crate::method::parse(self.method).unwrap_or(http::Method::GET)
    }
}

/// A list of attribute-defined routes, made by [`routes!`](crate::routes) and given to
/// [`Router::mount`](super::Router::mount).
#[must_use]
pub struct Routes<S = ()> {
    pub(crate) entries: Vec<(RouteInfo, MethodRouter<S>)>,
}

impl<S> fmt::Debug for Routes<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(i, _)| i))
            .finish()
    }
}

impl<S> Default for Routes<S> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the handler of a route attribute: `R` is the marker type, `handler` the function.
    /// A `scope = "…"` in the attribute is enforced here (401 without a peer, 403 without the
    /// scope; see [`auth`](crate::auth)).
    #[track_caller]
    pub fn handler<R, H, T>(mut self, handler: H) -> Self
    where
        R: RouteDef,
        H: Handler<T, S>,
        T: 'static,
    {
        let info = R::INFO;
        let mut route = MethodRouter::new().on(info.method(), handler);
        if let Some(scope) = info.scope {
            route = route.layer(crate::auth::require_scope(scope));
        }
        self.entries.push((info, route));
        self
    }

    /// The routes' descriptions.
    pub fn infos(&self) -> impl Iterator<Item = &RouteInfo> {
        self.entries.iter().map(|(i, _)| i)
    }
}
