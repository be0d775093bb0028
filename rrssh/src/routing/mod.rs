//! The [`Router`]: paths and methods to handlers, as a [`tower::Service`](tower_service::Service).

mod future;
pub mod introspect;
mod method_routing;
#[cfg(test)]
mod proptests;
mod route;
mod route_def;
mod template;

use std::collections::HashSet;
use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{StatusCode, header};
use percent_encoding::percent_decode_str;
use tower_layer::Layer;
use tower_service::Service;

pub use self::future::RouterFuture;
use self::method_routing::{CompiledMethods, MakeRoute, make_layered, make_service};
pub use self::method_routing::{MethodRouter, delete, get, on, patch, post, put, stream};
pub use self::route::Route;
pub use self::route_def::{ArgInfo, ArgKind, RouteDef, RouteInfo, Routes};
use crate::extract::{BodyLimit, Deadline, PathParams, TimedByCarrier};
use crate::response::IntoResponse;
use crate::{ApiError, Body, BoxError, Request};

/// Routes requests by path and method to handlers.
///
/// `Router<S>` is a router still missing a state of type `S`; [`with_state`](Self::with_state)
/// provides it. `Router<()>` is a [`tower::Service`](tower_service::Service) over
/// `http::Request`, cloneable and cheap to call, whose error is [`Infallible`]: every failure
/// (404, 405, rejections, deadline) is a response with the standard error JSON.
///
/// ```
/// use rrssh::{Router, routing::get, Path};
///
/// async fn hello() -> &'static str { "hi" }
/// async fn user(Path(id): Path<u64>) -> String { format!("user {id}") }
///
/// let app: Router = Router::new()
///     .route("/", get(hello))
///     .route("/users/{id}", get(user));
/// ```
#[must_use]
pub struct Router<S = ()> {
    inner: Arc<Inner<S>>,
    compiled: Arc<OnceLock<Arc<Compiled>>>,
}

struct Inner<S> {
    paths: Vec<(String, MethodRouter<S>)>,
    matcher: matchit::Router<usize>,
    fallback: Option<MakeRoute<S>>,
    infos: Vec<RouteInfo>,
    body_limit: Option<usize>,
    introspection: bool,
}

impl<S> Clone for Inner<S> {
    fn clone(&self) -> Self {
        Self {
            paths: self.paths.clone(),
            matcher: self.matcher.clone(),
            fallback: self.fallback.clone(),
            infos: self.infos.clone(),
            body_limit: self.body_limit,
            introspection: self.introspection,
        }
    }
}

impl<S> Clone for Router<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            compiled: self.compiled.clone(),
        }
    }
}

impl<S> fmt::Debug for Router<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field(
                "paths",
                &self
                    .inner
                    .paths
                    .iter()
                    .map(|(p, m)| (p, m))
                    .collect::<Vec<_>>(),
            )
            .field("has_fallback", &self.inner.fallback.is_some())
            .finish()
    }
}

impl<S: Clone + Send + Sync + 'static> Default for Router<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    /// A router with no routes but the built-in route listing
    /// ([`introspect::ROUTES_PATH`]; see [`introspection`](Self::introspection)); every other
    /// request answers 404.
    pub fn new() -> Self {
        let mut inner = Inner {
            paths: Vec::new(),
            matcher: matchit::Router::new(),
            fallback: None,
            infos: Vec::new(),
            body_limit: None,
            introspection: true,
        };
        inner.add(introspect::ROUTES_PATH, get(introspect::routes));
        #[cfg(feature = "openapi")]
        inner.add(crate::openapi::OPENAPI_PATH, get(introspect::openapi));
        Self::from_inner(inner)
    }

    /// Turns the built-in route listing (`GET /.well-known/rrssh/routes`, used by
    /// `rrssh routes`) on or off (default on). It is a route like the others: layers added
    /// after `Router::new` (authorization included) apply to it.
    pub fn introspection(self, on: bool) -> Self {
        let mut inner = self.into_inner();
        inner.introspection = on;
        Self::from_inner(inner)
    }

    fn from_inner(inner: Inner<S>) -> Self {
        Self {
            inner: Arc::new(inner),
            compiled: Arc::new(OnceLock::new()),
        }
    }

    fn into_inner(self) -> Inner<S> {
        Arc::try_unwrap(self.inner).unwrap_or_else(|arc| (*arc).clone())
    }

    /// Adds the handlers of `method_router` at `path` (`/users/{id}`, `/files/{*rest}`).
    ///
    /// # Panics
    /// If the path is malformed, overlaps a route added before (the message names both), or
    /// a method is routed twice on the same path.
    #[track_caller]
    pub fn route(self, path: &str, method_router: MethodRouter<S>) -> Self {
        let mut inner = self.into_inner();
        inner.add(path, method_router);
        Self::from_inner(inner)
    }

    /// Routes all requests of `method` at `path` to a [`Service`].
    #[track_caller]
    pub fn route_service<T>(self, path: &str, method: http::Method, svc: T) -> Self
    where
        T: Service<Request, Error = Infallible> + Clone + Send + Sync + 'static,
        T::Response: IntoResponse + 'static,
        T::Future: Send + 'static,
    {
        self.route(path, MethodRouter::new().on_service(method, svc))
    }

    /// Adds routes defined with the route attributes, listed by [`routes!`](crate::routes).
    ///
    /// ```
    /// use rrssh::{get, routes, Router};
    ///
    /// /// Says hello.
    /// #[get("/hello")]
    /// async fn hello() -> &'static str { "hello" }
    ///
    /// let app: Router = Router::new().mount(routes![hello]);
    /// assert_eq!(app.route_infos()[0].summary, Some("Says hello."));
    /// ```
    #[track_caller]
    pub fn mount(self, routes: Routes<S>) -> Self {
        let mut inner = self.into_inner();
        for (info, mr) in routes.entries {
            inner.add(info.path, mr);
            inner.infos.push(info);
        }
        Self::from_inner(inner)
    }

    /// Adds every route of `router` under `prefix` (`/api` + `/users` = `/api/users`).
    /// The nested router keeps its layers; its fallback is not used.
    ///
    /// # Panics
    /// If `prefix` does not start with `/`, ends with `/`, or a nested route overlaps.
    #[track_caller]
    pub fn nest(self, prefix: &str, router: Router<S>) -> Self {
        assert!(
            prefix.starts_with('/') && !prefix.ends_with('/'),
            "nest prefix `{prefix}` must start with `/` and not end with `/`"
        );
        let mut inner = self.into_inner();
        let other = router.into_inner();
        for (path, mr) in other
            .paths
            .into_iter()
            .filter(|(p, _)| !introspect::is_builtin(p))
        {
            let full = if path == "/" {
                prefix.to_owned()
            } else {
                format!("{prefix}{path}")
            };
            inner.add(&full, mr);
        }
        for info in other.infos {
            let path: &'static str = Box::leak(format!("{prefix}{}", info.path).into_boxed_str());
            inner.infos.push(RouteInfo { path, ..info });
        }
        Self::from_inner(inner)
    }

    /// Adds every route of `other` to this router.
    ///
    /// # Panics
    /// If routes overlap, or both routers have a fallback.
    #[track_caller]
    pub fn merge(self, other: Router<S>) -> Self {
        let mut inner = self.into_inner();
        let other = other.into_inner();
        for (path, mr) in other
            .paths
            .into_iter()
            .filter(|(p, _)| !introspect::is_builtin(p))
        {
            inner.add(&path, mr);
        }
        inner.infos.extend(other.infos);
        match (&inner.fallback, other.fallback) {
            (Some(_), Some(_)) => panic!("cannot merge two routers that both have a fallback"),
            (None, Some(f)) => inner.fallback = Some(f),
            _ => {}
        }
        if inner.body_limit.is_none() {
            inner.body_limit = other.body_limit;
        }
        Self::from_inner(inner)
    }

    /// Wraps every route and the fallback in `layer` (runs after routing, so a 404 from
    /// the default fallback also passes through it).
    pub fn layer<L>(self, layer: L) -> Self
    where
        L: Layer<Route> + Clone + Send + Sync + 'static,
        L::Service: Service<Request> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request>>::Error: Into<Infallible> + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        let mut inner = self.into_inner();
        let fallback = inner
            .fallback
            .take()
            .unwrap_or_else(|| make_service(DefaultFallback));
        inner.fallback = Some(make_layered(fallback, layer.clone()));
        inner.paths = inner
            .paths
            .into_iter()
            .map(|(p, mr)| (p, mr.layer(layer.clone())))
            .collect();
        Self::from_inner(inner)
    }

    /// Wraps every route (but not the fallback) in `layer`: for checks such as authorization
    /// that should only apply to requests that matched a route.
    pub fn route_layer<L>(self, layer: L) -> Self
    where
        L: Layer<Route> + Clone + Send + Sync + 'static,
        L::Service: Service<Request> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request>>::Error: Into<Infallible> + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        let mut inner = self.into_inner();
        inner.paths = inner
            .paths
            .into_iter()
            .map(|(p, mr)| (p, mr.layer(layer.clone())))
            .collect();
        Self::from_inner(inner)
    }

    /// Answers requests that match no route with `handler` (instead of the standard 404).
    pub fn fallback<H, T>(self, handler: H) -> Self
    where
        H: crate::handler::Handler<T, S>,
        T: 'static,
    {
        let mut inner = self.into_inner();
        inner.fallback = Some(method_routing::make_handler(handler));
        Self::from_inner(inner)
    }

    /// Development aid: a handler that panics answers 500 with the panic's message, location
    /// and backtrace in the error's `detail` (as Python frameworks show a traceback), instead of a bare
    /// "the handler panicked". Off by default: it tells callers about the code. Installs a
    /// process-wide panic hook that records each panic's backtrace before the hook already in
    /// place runs.
    pub fn expose_errors(self, on: bool) -> Self {
        if !on {
            return self;
        }
        crate::error_handling::panic::install_hook();
        self.layer(tower::layer::layer_fn(
            crate::error_handling::panic::catch::<Route>,
        ))
    }

    /// Sets the largest request body the body extractors accept (default
    /// [`DEFAULT_BODY_LIMIT`](crate::extract::DEFAULT_BODY_LIMIT), 16 MiB); larger bodies
    /// answer 413.
    pub fn body_limit(self, bytes: usize) -> Self {
        let mut inner = self.into_inner();
        inner.body_limit = Some(bytes);
        Self::from_inner(inner)
    }

    /// Provides the state, giving a router that needs none (or another state `S2`).
    pub fn with_state<S2>(self, state: S) -> Router<S2>
    where
        S2: Clone + Send + Sync + 'static,
    {
        let inner = self.into_inner();
        let bind = |make: MakeRoute<S>| -> MakeRoute<S2> {
            let route = make(&state);
            Arc::new(move |_: &S2| route.clone())
        };
        let paths = inner
            .paths
            .into_iter()
            .map(|(p, mr)| {
                let endpoints = mr
                    .endpoints
                    .into_iter()
                    .map(|(m, make)| (m, bind(make)))
                    .collect();
                (p, MethodRouter { endpoints })
            })
            .collect();
        Router::from_inner(Inner {
            paths,
            matcher: inner.matcher,
            fallback: inner.fallback.map(bind),
            infos: inner.infos,
            body_limit: inner.body_limit,
            introspection: inner.introspection,
        })
    }

    /// The routes added through [`mount`](Self::mount), with what their attributes said.
    pub fn route_infos(&self) -> &[RouteInfo] {
        &self.inner.infos
    }

    /// Every path routed, with its methods (the built-in route listing left out).
    pub fn paths(&self) -> impl Iterator<Item = (&str, Vec<&http::Method>)> {
        self.inner
            .paths
            .iter()
            .filter(|(p, _)| !introspect::is_builtin(p))
            .map(|(p, mr)| (p.as_str(), mr.methods().collect()))
    }

    /// The router's OpenAPI 3.1 document (see [`openapi`](crate::openapi)), titled `title`,
    /// version `version`; every router also serves it at
    /// [`OPENAPI_PATH`](crate::openapi::OPENAPI_PATH).
    #[cfg(feature = "openapi")]
    #[cfg_attr(docsrs, doc(cfg(feature = "openapi")))]
    pub fn openapi(&self, title: &str, version: &str) -> serde_json::Value {
        introspect::document(title, version, self.paths(), &self.inner.infos)
    }
}

impl<S> Inner<S>
where
    S: Clone + Send + Sync + 'static,
{
    #[track_caller]
    fn add(&mut self, path: &str, mr: MethodRouter<S>) {
        assert!(
            path.starts_with('/'),
            "route path `{path}` must start with `/`"
        );
        if let Some(i) = self.paths.iter().position(|(p, _)| p == path) {
            let existing = &mut self.paths[i].1;
            for (method, make) in mr.endpoints {
                match existing.endpoints.iter().position(|(m, _)| *m == method) {
                    // The application's own route replaces a built-in one (Python's OpenAPI).
                    Some(j) if introspect::is_builtin(path) => existing.endpoints[j].1 = make,
                    Some(_) => panic!("overlapping routes: `{method} {path}` is already routed"),
                    None => existing.endpoints.push((method, make)),
                }
            }
            return;
        }
        let index = self.paths.len();
        match self.matcher.insert(path, index) {
            Ok(()) => {}
            Err(matchit::InsertError::Conflict { with }) => {
                panic!("overlapping routes: `{path}` conflicts with the existing route `{with}`")
            }
            Err(other) => panic!("invalid route path `{path}`: {other}"),
        }
        self.paths.push((path.to_owned(), mr));
    }

    fn compile(&self, state: &S) -> Compiled {
        let fallback = match &self.fallback {
            Some(make) => make(state),
            None => Route::new(DefaultFallback),
        };
        let mut names: HashSet<Arc<str>> = HashSet::new();
        let mut intern = |s: &str| -> Arc<str> {
            let known = names.get(s).cloned();
            known.unwrap_or_else(|| {
                let a: Arc<str> = Arc::from(s);
                names.insert(a.clone());
                a
            })
        };
        Compiled {
            matcher: self.matcher.clone(),
            methods: self.paths.iter().map(|(_, mr)| mr.compile(state)).collect(),
            capture_names: self
                .paths
                .iter()
                .map(|(p, _)| {
                    template::captures_of(p)
                        .into_iter()
                        .map(&mut intern)
                        .collect()
                })
                .collect(),
            templates: (self.paths.iter())
                .map(|(p, _)| crate::observe::MatchedRoute(Arc::from(p.as_str())))
                .collect(),
            fallback,
            body_limit: self.body_limit,
            listing: self.introspection.then(|| {
                let paths = self
                    .paths
                    .iter()
                    .map(|(p, mr)| (p.as_str(), mr.methods().collect()));
                introspect::Listing::new(paths, &self.infos)
            }),
        }
    }
}

/// A router with its state bound: what answers requests.
struct Compiled {
    matcher: matchit::Router<usize>,
    methods: Vec<CompiledMethods>,
    capture_names: Vec<Vec<Arc<str>>>,
    /// Each path's template, stamped on its answers (for metrics and audit logs).
    templates: Vec<crate::observe::MatchedRoute>,
    fallback: Route,
    body_limit: Option<usize>,
    listing: Option<introspect::Listing>,
}

#[derive(Clone, Copy)]
struct DefaultFallback;

impl Service<Request> for DefaultFallback {
    type Response = crate::Response;
    type Error = Infallible;
    type Future = std::future::Ready<Result<crate::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let msg = format!("no route for {} {}", req.method(), req.uri().path());
        std::future::ready(Ok(ApiError::new(StatusCode::NOT_FOUND, msg).into_response()))
    }
}

impl Router<()> {
    fn compiled(&self) -> &Arc<Compiled> {
        self.compiled
            .get_or_init(|| Arc::new(self.inner.compile(&())))
    }

    /// Answers one request (the body of [`Service::call`]).
    fn dispatch(&self, mut req: Request) -> RouterFuture {
        let compiled = self.compiled();
        let method = crate::method::normalize(std::mem::take(req.method_mut()));
        *req.method_mut() = method;

        let deadline = match Deadline::of(req.extensions(), req.headers()) {
            Ok(d) => d,
            Err(e) => {
                return RouterFuture::ready(ApiError::bad_request(e.to_string()).into_response());
            }
        };
        // A carrier that times the call (a connection) answers its expiry itself.
        let timed = req.extensions().get::<TimedByCarrier>().is_none();
        if timed && deadline.expired() {
            return RouterFuture::ready(deadline_exceeded());
        }
        if deadline.0.is_some() {
            req.extensions_mut().insert(deadline);
        }
        if let Some(limit) = compiled.body_limit {
            req.extensions_mut().insert(BodyLimit(limit));
        }

        if let Some(listing) = &compiled.listing
            && introspect::is_builtin(req.uri().path())
        {
            req.extensions_mut().insert(listing.clone());
        }
        let path = req.uri().path();
        let mut template = None;
        let route = match compiled.matcher.at(path) {
            Ok(found) => {
                let index = *found.value;
                template = compiled.templates.get(index).cloned();
                let methods = &compiled.methods[index];
                match methods.find(req.method()) {
                    Some(route) => {
                        if !found.params.is_empty() {
                            let names = &compiled.capture_names[index];
                            let params = found
                                .params
                                .iter()
                                .zip(names)
                                .map(|((_, v), n)| (n.clone(), percent_decode_str(v)))
                                .map(|(n, v)| (n, v.decode_utf8_lossy().into_owned()))
                                .collect();
                            req.extensions_mut().insert(PathParams(Arc::new(params)));
                        }
                        route
                    }
                    None => {
                        let msg = format!(
                            "method {} is not allowed on {path}; allowed: {}",
                            req.method(),
                            methods.allow.to_str().unwrap_or_default()
                        );
                        let mut res =
                            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, msg).into_response();
                        res.headers_mut()
                            .insert(header::ALLOW, methods.allow.clone());
                        return RouterFuture::ready(res);
                    }
                }
            }
            Err(_) => &compiled.fallback,
        };
        RouterFuture::call(
            route.oneshot(req),
            if timed { deadline } else { Deadline(None) },
            template,
        )
    }
}

pub(crate) fn deadline_exceeded() -> crate::Response {
    ApiError::new(StatusCode::GATEWAY_TIMEOUT, "deadline exceeded").into_response()
}

impl<B> Service<http::Request<B>> for Router<()>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = crate::Response;
    type Error = Infallible;
    type Future = RouterFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> RouterFuture {
        self.dispatch(req.map(Body::new))
    }
}
