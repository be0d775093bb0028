use std::borrow::Cow;
use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};

use super::Response;
use crate::Body;

/// Anything a handler may return.
///
/// Implemented for `()`, [`StatusCode`], `String`, `&'static str`, [`Bytes`],
/// [`Json<T>`](crate::Json), [`JsonStream<T>`](super::JsonStream), [`ApiError`](crate::ApiError),
/// `(StatusCode, R)`, `(HeaderMap, R)`, `(StatusCode, HeaderMap, R)`, `Result<R, E>` where both
/// sides implement it, and [`Response`] itself.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned from a handler",
    note = "return a type that implements `IntoResponse`, such as `Json<T>`, `String`, `StatusCode` or `Result<R, ApiError>`"
)]
pub trait IntoResponse {
    /// Makes the response.
    fn into_response(self) -> Response;
}

impl<B> IntoResponse for http::Response<B>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<crate::BoxError>,
{
    fn into_response(self) -> Response {
        self.map(Body::new)
    }
}

impl IntoResponse for () {
    fn into_response(self) -> Response {
        Response::new(Body::empty())
    }
}

impl IntoResponse for Infallible {
    fn into_response(self) -> Response {
        match self {}
    }
}

impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        let mut res = Response::new(Body::empty());
        *res.status_mut() = self;
        res
    }
}

fn text(body: Body) -> Response {
    let mut res = Response::new(body);
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        text(Body::from(self))
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        text(Body::from(self))
    }
}

impl IntoResponse for Cow<'static, str> {
    fn into_response(self) -> Response {
        text(Body::from(self.into_owned()))
    }
}

impl IntoResponse for Bytes {
    fn into_response(self) -> Response {
        let mut res = Response::new(Body::from(self));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/octet-stream"),
        );
        res
    }
}

impl IntoResponse for Vec<u8> {
    fn into_response(self) -> Response {
        Bytes::from(self).into_response()
    }
}

impl IntoResponse for Body {
    fn into_response(self) -> Response {
        Response::new(self)
    }
}

impl<R: IntoResponse, E: IntoResponse> IntoResponse for Result<R, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        }
    }
}

impl<R: IntoResponse> IntoResponse for (StatusCode, R) {
    fn into_response(self) -> Response {
        let mut res = self.1.into_response();
        *res.status_mut() = self.0;
        res
    }
}

impl<R: IntoResponse> IntoResponse for (HeaderMap, R) {
    fn into_response(self) -> Response {
        let mut res = self.1.into_response();
        res.headers_mut().extend(self.0);
        res
    }
}

impl<R: IntoResponse> IntoResponse for (StatusCode, HeaderMap, R) {
    fn into_response(self) -> Response {
        let mut res = (self.1, self.2).into_response();
        *res.status_mut() = self.0;
        res
    }
}
