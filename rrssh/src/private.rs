//! Support for the code the route attributes generate. Not a public API.

use http::Method;
use serde::Serialize;

use crate::client::{Call, Error, FromResponse};
use crate::{Body, Request};

pub use serde;

/// The schemas of a route's types, for the OpenAPI document.
pub mod schema {
    pub use crate::openapi::probe::{
        BodyShape, Collector, NoSchema, OutputShape, Probe, RouteSchemas, SchemaFn, ViaSchema,
    };
}

/// The parts of a typed call, filled in path, query, body order.
#[derive(Debug)]
pub struct CallBuilder {
    method: &'static str,
    template: &'static str,
    path: Option<String>,
    query: Option<String>,
    body: Option<(Body, bool)>,
    error: Option<Error>,
}

impl CallBuilder {
    /// A call of `method` on the route `template`.
    pub fn new(method: &'static str, template: &'static str) -> Self {
        Self {
            method,
            template,
            path: None,
            query: None,
            body: None,
            error: None,
        }
    }

    fn keep(&mut self, r: Result<(), Error>) {
        if let Err(e) = r
            && self.error.is_none()
        {
            self.error = Some(e);
        }
    }

    /// Fills the path captures.
    pub fn path<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        let r = crate::client::path::fill(self.template, value).map(|p| self.path = Some(p));
        self.keep(r);
        self
    }

    /// Sets the query string.
    pub fn params<T: Serialize>(mut self, value: &T) -> Self {
        let r = serde_qs::to_string(value)
            .map(|q| self.query = Some(q))
            .map_err(|e| Error::Encode(format!("query: {e}")));
        self.keep(r);
        self
    }

    /// Sets a JSON body.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        let r = serde_json::to_vec(value)
            .map(|b| self.body = Some((Body::from(b), true)))
            .map_err(|e| Error::Encode(format!("JSON body: {e}")));
        self.keep(r);
        self
    }

    /// Sets a raw body (bytes, text, or a [`ByteStream`](crate::ByteStream) upload).
    pub fn body(mut self, value: impl Into<Body>) -> Self {
        self.body = Some((value.into(), false));
        self
    }

    /// Builds the request.
    pub fn build(self) -> Result<Request, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let method = crate::method::parse(self.method).unwrap_or(Method::GET);
        let mut uri = self
            .path
            .unwrap_or_else(|| crate::client::path::plain(self.template));
        if let Some(q) = self.query.filter(|q| !q.is_empty()) {
            uri.push('?');
            uri.push_str(&q);
        }
        let (body, json) = self.body.unwrap_or((Body::empty(), false));
        let mut builder = http::Request::builder().method(method).uri(&uri);
        if json {
            builder = builder.header(
                http::header::CONTENT_TYPE,
                crate::response::APPLICATION_JSON,
            );
        }
        builder
            .body(body)
            .map_err(|e| Error::Encode(format!("invalid request URI `{uri}`: {e}")))
    }

    /// Sends the call and decodes the answer as the handler's return type `R`.
    pub async fn send<R: FromResponse, C: Call>(self, client: &C) -> Result<R::Output, Error> {
        let req = self.build()?;
        let res = client.call(req).await?;
        R::from_response(res).await
    }
}

/// Compile-time checks the route attributes emit (never called at run time).
pub mod check {
    use crate::extract::{FromRequest, FromRequestParts};
    use crate::response::{IntoResponse, StreamResponse};

    /// The argument is an extractor that reads only the head.
    pub fn parts<T: FromRequestParts<S>, S>() {}
    /// The last argument is an extractor.
    pub fn last<T: FromRequest<S, M>, S, M>() {}
    /// The return type is a response.
    pub fn response<T: IntoResponse>() {}
    /// The return type is a stream response.
    pub fn stream<T: StreamResponse>() {}
}
