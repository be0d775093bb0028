//! Attribute macros for rrssh: `#[get]`, `#[post]`, `#[put]`, `#[patch]`, `#[delete]`,
//! `#[stream]`, `#[route]`, `routes![]`, and `#[api]` for traits. Use them through the `rrssh`
//! crate.
//!
//! This file holds only the entry points; the expansion works on `proc_macro2` token streams
//! in [`route`], [`routes`] and [`api`] so that it can be unit tested.

use proc_macro::TokenStream;

mod api;
mod route;
mod routes;

macro_rules! method_attribute {
    ($($name:ident => $method:literal),* $(,)?) => {$(
        #[doc = concat!("Makes an async fn the handler of `", $method, " PATH`, and generates its typed client call.")]
        ///
        /// Arguments: the path literal, then optionally `scope = "name"` (the scope a caller
        /// needs) and `state = Type` (the router state, for the compile-time extractor checks).
        #[proc_macro_attribute]
        pub fn $name(args: TokenStream, item: TokenStream) -> TokenStream {
            route::expand(Some($method), args.into(), item.into()).into()
        }
    )*};
}

method_attribute! {
    get => "GET",
    post => "POST",
    put => "PUT",
    patch => "PATCH",
    delete => "DELETE",
    stream => "STREAM",
}

/// Makes an async fn the handler of `METHOD PATH` for any method:
/// `#[route(OPTIONS, "/path")]`.
#[proc_macro_attribute]
pub fn route(args: TokenStream, item: TokenStream) -> TokenStream {
    route::expand(None, args.into(), item.into()).into()
}

/// Lists handlers defined with route attributes, for `Router::mount`: `routes![a, b, c]`.
#[proc_macro]
pub fn routes(input: TokenStream) -> TokenStream {
    routes::expand(input.into()).into()
}

/// Makes a trait an API: each method carries a route attribute and takes `&self` plus the
/// extractors a handler takes. Generates the trait (with `Send` futures and a provided
/// `into_router`) and `TraitClient<C>`, a typed client over any `rrssh::client::Call`.
#[proc_macro_attribute]
pub fn api(args: TokenStream, item: TokenStream) -> TokenStream {
    api::expand(args.into(), item.into()).into()
}
