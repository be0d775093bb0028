use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;

use http::{HeaderValue, Method};
use tower_layer::Layer;
use tower_service::Service;

use super::Route;
use crate::Request;
use crate::handler::Handler;
use crate::response::IntoResponse;

/// Makes a route once the state is known.
pub(crate) type MakeRoute<S> = Arc<dyn Fn(&S) -> Route + Send + Sync>;

pub(crate) fn make_handler<H, T, S>(handler: H) -> MakeRoute<S>
where
    H: Handler<T, S>,
    T: 'static,
    S: Clone + Send + Sync + 'static,
{
    Arc::new(move |state: &S| Route::new(handler.clone().with_state(state.clone())))
}

pub(crate) fn make_service<S, T>(svc: T) -> MakeRoute<S>
where
    T: Service<Request, Error = Infallible> + Clone + Send + Sync + 'static,
    T::Response: IntoResponse + 'static,
    T::Future: Send + 'static,
{
    let route = Route::new(svc);
    Arc::new(move |_: &S| route.clone())
}

pub(crate) fn make_layered<S, L>(make: MakeRoute<S>, layer: L) -> MakeRoute<S>
where
    S: 'static,
    L: Layer<Route> + Clone + Send + Sync + 'static,
    L::Service: Service<Request> + Clone + Send + Sync + 'static,
    <L::Service as Service<Request>>::Response: IntoResponse + 'static,
    <L::Service as Service<Request>>::Error: Into<Infallible> + 'static,
    <L::Service as Service<Request>>::Future: Send + 'static,
{
    Arc::new(move |state: &S| make(state).layer(layer.clone()))
}

/// The handlers of one path, by method. Made with [`get`], [`post`], … and chained:
/// `get(list).post(create)`.
#[must_use]
pub struct MethodRouter<S = ()> {
    pub(crate) endpoints: Vec<(Method, MakeRoute<S>)>,
}

impl<S> Clone for MethodRouter<S> {
    fn clone(&self) -> Self {
        Self {
            endpoints: self.endpoints.clone(),
        }
    }
}

impl<S> fmt::Debug for MethodRouter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.endpoints.iter().map(|(m, _)| m))
            .finish()
    }
}

impl<S> Default for MethodRouter<S> {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
        }
    }
}

macro_rules! chained {
    ($($name:ident => $method:expr, $doc:literal;)*) => {
        $(
            #[doc = concat!("Routes `", $doc, "` requests to `handler`.")]
            #[track_caller]
            pub fn $name<H, T>(self, handler: H) -> Self
            where
                H: Handler<T, S>,
                T: 'static,
            {
                self.on($method, handler)
            }
        )*
    };
}

macro_rules! top_level {
    ($($name:ident => $doc:literal;)*) => {
        $(
            #[doc = concat!("A [`MethodRouter`] routing `", $doc, "` requests to `handler`.")]
            pub fn $name<H, T, S>(handler: H) -> MethodRouter<S>
            where
                H: Handler<T, S>,
                T: 'static,
                S: Clone + Send + Sync + 'static,
            {
                MethodRouter::new().$name(handler)
            }
        )*
    };
}

impl<S> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    /// A method router with no handlers.
    pub fn new() -> Self {
        Self::default()
    }

    chained! {
        get => Method::GET, "GET";
        post => Method::POST, "POST";
        put => Method::PUT, "PUT";
        patch => Method::PATCH, "PATCH";
        delete => Method::DELETE, "DELETE";
        stream => crate::method::STREAM.clone(), "STREAM";
    }

    /// Routes requests of `method` to `handler`.
    ///
    /// # Panics
    /// If `method` already has a handler here.
    #[track_caller]
    pub fn on<H, T>(self, method: Method, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.on_make(method, make_handler(handler))
    }

    /// Routes requests of `method` to a [`Service`].
    #[track_caller]
    pub fn on_service<T>(self, method: Method, svc: T) -> Self
    where
        T: Service<Request, Error = Infallible> + Clone + Send + Sync + 'static,
        T::Response: IntoResponse + 'static,
        T::Future: Send + 'static,
    {
        self.on_make(method, make_service(svc))
    }

    #[track_caller]
    pub(crate) fn on_make(mut self, method: Method, make: MakeRoute<S>) -> Self {
        let method = crate::method::normalize(method);
        if self.endpoints.iter().any(|(m, _)| *m == method) {
            panic!("overlapping method route: `{method}` already has a handler on this path");
        }
        self.endpoints.push((method, make));
        self
    }

    /// Wraps every handler of this method router in `layer`.
    pub fn layer<L>(self, layer: L) -> Self
    where
        L: Layer<Route> + Clone + Send + Sync + 'static,
        L::Service: Service<Request> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request>>::Error: Into<Infallible> + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        Self {
            endpoints: self
                .endpoints
                .into_iter()
                .map(|(m, make)| (m, make_layered(make, layer.clone())))
                .collect(),
        }
    }

    /// The methods routed here.
    pub fn methods(&self) -> impl Iterator<Item = &Method> {
        self.endpoints.iter().map(|(m, _)| m)
    }

    pub(crate) fn compile(&self, state: &S) -> CompiledMethods {
        let routes: Vec<(Method, Route)> = self
            .endpoints
            .iter()
            .map(|(m, make)| (m.clone(), make(state)))
            .collect();
        let allow = routes
            .iter()
            .map(|(m, _)| m.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        CompiledMethods {
            allow: HeaderValue::from_str(&allow).unwrap_or_else(|_| HeaderValue::from_static("")),
            routes,
        }
    }
}

top_level! {
    get => "GET";
    post => "POST";
    put => "PUT";
    patch => "PATCH";
    delete => "DELETE";
    stream => "STREAM";
}

/// A [`MethodRouter`] routing `method` to `handler`.
#[track_caller]
pub fn on<H, T, S>(method: Method, handler: H) -> MethodRouter<S>
where
    H: Handler<T, S>,
    T: 'static,
    S: Clone + Send + Sync + 'static,
{
    MethodRouter::new().on(method, handler)
}

/// A path's routes once the state is bound.
pub(crate) struct CompiledMethods {
    pub(crate) routes: Vec<(Method, Route)>,
    pub(crate) allow: HeaderValue,
}

impl CompiledMethods {
    pub(crate) fn find(&self, method: &Method) -> Option<&Route> {
        self.routes
            .iter()
            .find(|(m, _)| m == method)
            .map(|(_, r)| r)
    }
}
