use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Call, ClientStream, Error, FromResponse};
use crate::extract::TIMEOUT_HEADER;
use crate::response::{APPLICATION_JSON, JsonStream};
use crate::{Body, Json, Request, Response};

/// Untyped calls on any [`Call`]: `client.get("/home").params(&p).send().await`.
///
/// ```
/// # use rrssh::{Router, routing::get, test::TestClient, client::CallExt};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rrssh::client::Error> {
/// let client = TestClient::new(Router::new().route("/home", get(|| async { "home" })));
/// let text: String = client.get("/home").receive_text().await?;
/// assert_eq!(text, "home");
/// # Ok(()) }
/// ```
pub trait CallExt: Call + Sized {
    /// A request of any method.
    fn request(&self, method: Method, path: &str) -> RequestBuilder<'_, Self> {
        RequestBuilder::new(self, method, path)
    }
    /// A GET request.
    fn get(&self, path: &str) -> RequestBuilder<'_, Self> {
        self.request(Method::GET, path)
    }
    /// A POST request.
    fn post(&self, path: &str) -> RequestBuilder<'_, Self> {
        self.request(Method::POST, path)
    }
    /// A PUT request.
    fn put(&self, path: &str) -> RequestBuilder<'_, Self> {
        self.request(Method::PUT, path)
    }
    /// A PATCH request.
    fn patch(&self, path: &str) -> RequestBuilder<'_, Self> {
        self.request(Method::PATCH, path)
    }
    /// A DELETE request.
    fn delete(&self, path: &str) -> RequestBuilder<'_, Self> {
        self.request(Method::DELETE, path)
    }
    /// A STREAM request; read its items with [`RequestBuilder::items`].
    fn stream(&self, path: &str) -> RequestBuilder<'_, Self> {
        self.request(crate::method::STREAM.clone(), path)
    }
}

impl<C: Call> CallExt for C {}

/// A request being built; see [`CallExt`].
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder<'a, C> {
    client: &'a C,
    req: Result<Request, Error>,
}

impl<C> fmt::Debug for RequestBuilder<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("req", &self.req)
            .finish_non_exhaustive()
    }
}

impl<'a, C: Call> RequestBuilder<'a, C> {
    fn new(client: &'a C, method: Method, path: &str) -> Self {
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .map_err(|e| Error::Encode(format!("invalid path `{path}`: {e}")));
        Self { client, req }
    }

    fn map(mut self, f: impl FnOnce(&mut Request) -> Result<(), Error>) -> Self {
        if let Ok(req) = &mut self.req
            && let Err(e) = f(req)
        {
            self.req = Err(e);
        }
        self
    }

    /// Sets the query string from a value (nested structs and sequences allowed).
    pub fn params<T: Serialize>(self, params: &T) -> Self {
        self.map(|req| set_query(req, params))
    }

    /// Sets a JSON body.
    pub fn json<T: Serialize + ?Sized>(self, body: &T) -> Self {
        self.map(|req| set_json(req, body))
    }

    /// Sets a raw body.
    pub fn body(self, body: impl Into<Bytes>) -> Self {
        let body = body.into();
        self.map(move |req| {
            *req.body_mut() = Body::from(body);
            Ok(())
        })
    }

    /// Adds a header.
    pub fn header(self, name: HeaderName, value: HeaderValue) -> Self {
        self.map(move |req| {
            req.headers_mut().append(name, value);
            Ok(())
        })
    }

    /// Gives the call a deadline: the server stops working on it (answering 504) when the
    /// time is up.
    pub fn timeout(self, budget: Duration) -> Self {
        self.map(move |req| {
            set_timeout(req.headers_mut(), budget);
            Ok(())
        })
    }

    /// The request as built.
    pub fn build(self) -> Result<Request, Error> {
        self.req
    }

    /// Sends the request and returns the response, whatever its status.
    pub async fn send(self) -> Result<Response, Error> {
        self.client.call(self.req?).await
    }

    /// Sends the request and decodes a JSON answer; a non-2xx answer is [`Error::Status`].
    pub async fn receive<T: DeserializeOwned + Send>(self) -> Result<T, Error> {
        <Json<T> as FromResponse>::from_response(self.send().await?).await
    }

    /// Sends the request and reads a text answer; a non-2xx answer is [`Error::Status`].
    pub async fn receive_text(self) -> Result<String, Error> {
        <String as FromResponse>::from_response(self.send().await?).await
    }

    /// Sends the request and reads its answer as a stream of JSON items.
    pub async fn items<T: DeserializeOwned + Send + 'static>(
        self,
    ) -> Result<ClientStream<T>, Error> {
        <JsonStream<T> as FromResponse>::from_response(self.send().await?).await
    }
}

pub(crate) fn set_query<T: Serialize>(req: &mut Request, params: &T) -> Result<(), Error> {
    let query = serde_qs::to_string(params).map_err(|e| Error::Encode(format!("query: {e}")))?;
    if query.is_empty() {
        return Ok(());
    }
    let path = req.uri().path();
    let uri = format!("{path}?{query}");
    *req.uri_mut() = uri
        .parse()
        .map_err(|e| Error::Encode(format!("query `{query}`: {e}")))?;
    Ok(())
}

pub(crate) fn set_json<T: Serialize + ?Sized>(req: &mut Request, body: &T) -> Result<(), Error> {
    let mut bytes = bytes::BytesMut::with_capacity(128);
    crate::response::encode_json(&mut bytes, body)
        .map_err(|e| Error::Encode(format!("JSON body: {e}")))?;
    *req.body_mut() = Body::from(bytes.freeze());
    req.headers_mut()
        .insert(header::CONTENT_TYPE, APPLICATION_JSON);
    Ok(())
}

pub(crate) fn set_timeout(headers: &mut HeaderMap, budget: Duration) {
    headers.insert(
        TIMEOUT_HEADER,
        crate::proto::Budget::from_duration(budget).to_header_value(),
    );
}
