#![doc = include_str!("docs/lib.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[macro_use]
mod macros;

#[cfg(feature = "ssh")]
mod accept;
#[cfg(feature = "ssh")]
pub mod audit;

pub mod auth;
mod body;
pub mod budget;
mod byte_stream;
pub mod client;
#[cfg(feature = "cluster")]
#[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
pub mod cluster;
pub mod connection;
mod error;
pub mod error_handling;
pub mod extract;
#[cfg(feature = "gateway")]
#[cfg_attr(docsrs, doc(cfg(feature = "gateway")))]
pub mod gateway;
pub mod handler;
#[cfg(feature = "ssh")]
#[cfg_attr(docsrs, doc(cfg(feature = "ssh")))]
pub mod hub;
mod json;
#[cfg(feature = "ssh")]
#[cfg_attr(docsrs, doc(cfg(feature = "ssh")))]
pub mod keys;
mod logging;
pub mod method;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
pub mod observe;
pub mod openapi;
#[cfg(any(feature = "gateway", feature = "web-terminal"))]
mod origin;
pub mod proto;
#[cfg(feature = "ssh")]
#[cfg_attr(docsrs, doc(cfg(feature = "ssh")))]
pub mod proxy;
pub mod response;
pub mod routing;
#[cfg(feature = "ssh")]
#[cfg_attr(docsrs, doc(cfg(feature = "ssh")))]
pub mod server;
#[cfg(feature = "ssh")]
#[cfg_attr(docsrs, doc(cfg(feature = "ssh")))]
pub mod terminal;
pub mod test;
#[cfg(feature = "websocket")]
#[cfg_attr(docsrs, doc(cfg(feature = "websocket")))]
pub mod tls;
pub mod trace;
#[cfg(feature = "ssh")]
#[cfg_attr(docsrs, doc(cfg(feature = "ssh")))]
pub mod transport;
#[cfg(feature = "ssh")]
#[cfg_attr(docsrs, doc(cfg(feature = "ssh")))]
pub mod tunnel;
#[cfg(feature = "websocket")]
#[cfg_attr(docsrs, doc(cfg(feature = "websocket")))]
pub mod websocket;

#[doc(hidden)]
pub mod __private {
    pub use crate::private::*;
}
mod private;

pub use bytes::Bytes;
pub use http::{HeaderMap, Method, StatusCode};
/// Route attributes and the list macro; see the crate docs.
pub use rrssh_macros::{api, delete, get, patch, post, put, route, routes, stream};

pub use crate::body::{Body, BodyIdle, LengthLimitError};
pub use crate::byte_stream::ByteStream;
pub use crate::error::ApiError;
pub use crate::extract::{Deadline, Extension, Params, Path, Peer, State};
#[cfg(feature = "ssh")]
pub use crate::hub::Hub;
pub use crate::json::Json;
pub use crate::response::{IntoResponse, JsonStream};
pub use crate::routing::Router;
#[cfg(feature = "ssh")]
pub use crate::server::Server;
#[cfg(feature = "ssh")]
pub use crate::transport::{Client, ReconnectingClient};

/// A request, as the `http` crate defines it, with rrssh's [`Body`].
pub type Request<B = Body> = http::Request<B>;
/// A response, as the `http` crate defines it, with rrssh's [`Body`].
pub type Response<B = Body> = http::Response<B>;
/// A boxed error, as tower uses.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[doc = include_str!("docs/middleware.md")]
pub mod middleware {}
