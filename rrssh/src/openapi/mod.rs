//! OpenAPI 3.1 documents of routers, for callers in every other language: the paths, methods,
//! parameters, request and response schemas, the standard error JSON, and the doc comments of
//! the handlers as summaries. STREAM routes appear as `get` operations answering
//! `application/x-ndjson` (the item schema), marked `x-rrssh-method: STREAM`; through the HTTP
//! gateway a GET with `Accept: application/x-ndjson` is that call.
//!
//! With the `openapi` feature, [`Router::openapi`](crate::Router::openapi) builds the document
//! and every router serves it at [`OPENAPI_PATH`] (next to the route listing, and like it
//! turned off by [`Router::introspection`](crate::Router::introspection)). Schemas come from
//! [`schemars::JsonSchema`](https://docs.rs/schemars): derive it on the types of `Path`,
//! `Params`, `Json` and `JsonStream`; a type without it is left open (`{}`) rather than refused.
//! `rrssh routes --openapi` prints a server's document; the hub's gateway serves each peer's at
//! `/peers/NAME/openapi.json`, its paths under `/peers/NAME`.

#[cfg(feature = "openapi")]
mod document;
#[doc(hidden)]
pub mod probe;

#[cfg(feature = "openapi")]
pub use self::document::{Operation, document, error_schema};

/// Where every router serves its OpenAPI document (feature `openapi`).
pub const OPENAPI_PATH: &str = "/.well-known/rrssh/openapi.json";
