use std::borrow::Cow;
use std::future::Future;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use super::{ClientStream, Error};
use crate::response::JsonStream;
use crate::{ApiError, Body, Json, Response};

/// How a typed call reads the response of a handler returning `Self`.
///
/// `Json<T>` gives `T`; `JsonStream<T>` gives a [`ClientStream<T>`]; `Result<R, E>` gives `R`'s
/// output; `()` and `StatusCode` give `()`; `String` and `&str` give `String`; `Bytes` gives
/// `Bytes`; `(StatusCode, R)` and `(HeaderMap, R)` give `R`'s output; `Response` gives the
/// response. Every one of them turns a non-2xx answer into [`Error::Status`].
#[diagnostic::on_unimplemented(
    message = "the typed client cannot decode a response of type `{Self}`",
    note = "return a standard response type (`Json<T>`, `JsonStream<T>`, `Result<R, E>`, `String`, `()`, `StatusCode`), \
            `impl IntoResponse` (the call then returns the raw `Response`), or implement `FromResponse` for it"
)]
pub trait FromResponse {
    /// What the typed call returns.
    type Output;

    /// Decodes the response.
    fn from_response(res: Response) -> impl Future<Output = Result<Self::Output, Error>> + Send;
}

/// Passes a 2xx response through; turns any other into [`Error::Status`] with the error JSON
/// of its body decoded.
pub async fn check_status(res: Response) -> Result<Response, Error> {
    if res.status().is_success() {
        return Ok(res);
    }
    let status = res.status();
    let body = res
        .into_body()
        .collect_limited(1024 * 1024)
        .await
        .unwrap_or_default();
    Err(Error::Status {
        status,
        body: ApiError::from_body(status, &body),
    })
}

pub(crate) async fn read_all(res: Response) -> Result<Bytes, Error> {
    let res = check_status(res).await?;
    match res.into_body().collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => Err(Error::from_boxed(e)),
    }
}

impl<T: DeserializeOwned + Send> FromResponse for Json<T> {
    type Output = T;

    async fn from_response(res: Response) -> Result<T, Error> {
        let bytes = read_all(res).await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Decode(e.to_string()))
    }
}

impl<T: DeserializeOwned + Send + 'static> FromResponse for JsonStream<T> {
    type Output = ClientStream<T>;

    async fn from_response(res: Response) -> Result<ClientStream<T>, Error> {
        let res = check_status(res).await?;
        Ok(ClientStream::new(res.into_body()))
    }
}

impl<R: FromResponse, E> FromResponse for Result<R, E> {
    type Output = R::Output;

    fn from_response(res: Response) -> impl Future<Output = Result<R::Output, Error>> + Send {
        R::from_response(res)
    }
}

macro_rules! unit_output {
    ($($ty:ty),*) => {$(
        impl FromResponse for $ty {
            type Output = ();

            async fn from_response(res: Response) -> Result<(), Error> {
                read_all(res).await.map(drop)
            }
        }
    )*};
}
unit_output!((), StatusCode);

macro_rules! string_output {
    ($($ty:ty),*) => {$(
        impl FromResponse for $ty {
            type Output = String;

            async fn from_response(res: Response) -> Result<String, Error> {
                let bytes = read_all(res).await?;
                String::from_utf8(bytes.into()).map_err(|e| Error::Decode(e.to_string()))
            }
        }
    )*};
}
string_output!(String, &'static str, Cow<'static, str>);

macro_rules! bytes_output {
    ($($ty:ty),*) => {$(
        impl FromResponse for $ty {
            type Output = Bytes;

            fn from_response(res: Response) -> impl Future<Output = Result<Bytes, Error>> + Send {
                read_all(res)
            }
        }
    )*};
}
bytes_output!(Bytes, Vec<u8>);

impl FromResponse for Response {
    type Output = Response;

    fn from_response(res: Response) -> impl Future<Output = Result<Response, Error>> + Send {
        check_status(res)
    }
}

impl FromResponse for Body {
    type Output = Body;

    async fn from_response(res: Response) -> Result<Body, Error> {
        Ok(check_status(res).await?.into_body())
    }
}

impl<R: FromResponse> FromResponse for (StatusCode, R) {
    type Output = R::Output;

    fn from_response(res: Response) -> impl Future<Output = Result<R::Output, Error>> + Send {
        R::from_response(res)
    }
}

impl<R: FromResponse> FromResponse for (HeaderMap, R) {
    type Output = R::Output;

    fn from_response(res: Response) -> impl Future<Output = Result<R::Output, Error>> + Send {
        R::from_response(res)
    }
}

impl<R: FromResponse> FromResponse for (StatusCode, HeaderMap, R) {
    type Output = R::Output;

    fn from_response(res: Response) -> impl Future<Output = Result<R::Output, Error>> + Send {
        R::from_response(res)
    }
}
