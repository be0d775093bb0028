//! [`Json<T>`]: a JSON request body extractor and a JSON response.

use std::ops::{Deref, DerefMut};

use bytes::{BufMut, BytesMut};
use http::{HeaderMap, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::extract::FromRequest;
use crate::extract::rejection::JsonRejection;
use crate::response::{APPLICATION_JSON, IntoResponse, Response};
use crate::{ApiError, Body, Request};

/// A JSON body: as an extractor it parses the request body (which must have
/// `content-type: application/json`); as a response it serializes `T`.
///
/// Rejections: 415 when the content type is not JSON, 400 when the body is not valid JSON,
/// 422 when it is valid JSON of the wrong shape, 413 when it is over the body limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

/// Whether a content type names JSON: `application/json` or `application/*+json`.
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = ct.split(';').next().unwrap_or("").trim();
    let Some((ty, sub)) = mime.split_once('/') else {
        return false;
    };
    ty.eq_ignore_ascii_case("application")
        && (sub.eq_ignore_ascii_case("json")
            || sub.len() > 5 && sub[sub.len() - 5..].eq_ignore_ascii_case("+json"))
}

impl<T> Json<T>
where
    T: DeserializeOwned,
{
    /// Parses JSON bytes, with the rejection an extractor would answer.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, JsonRejection> {
        serde_json::from_slice(bytes).map(Json).map_err(|e| {
            let status = match e.classify() {
                serde_json::error::Category::Data => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::BAD_REQUEST,
            };
            let msg = match e.classify() {
                serde_json::error::Category::Data => {
                    format!("JSON does not fit the expected type: {e}")
                }
                _ => format!("invalid JSON: {e}"),
            };
            JsonRejection(ApiError::new(status, msg).with_detail(serde_json::json!({
                "line": e.line(), "column": e.column()
            })))
        })
    }
}

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = JsonRejection;

    async fn from_request(req: Request, _: &S) -> Result<Self, JsonRejection> {
        if !is_json(req.headers()) {
            return Err(JsonRejection::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected a request with `content-type: application/json`",
            ));
        }
        let bytes = crate::extract::read_body(req)
            .await
            .map_err(|(s, m)| JsonRejection::new(s, m))?;
        Self::from_bytes(&bytes)
    }
}

/// Writes `value` as JSON at the end of `buf`; on an error `buf` is as it was.
///
/// With the `fast-json` feature sonic-rs writes it, and serde_json writes again what sonic-rs
/// would have written differently: serde_json's own types (`RawValue`, arbitrary-precision
/// numbers) reach a serializer as structs with a private name, which only serde_json reads as
/// raw JSON. The bytes mean the same either way.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    buf: &mut BytesMut,
    value: &T,
) -> Result<(), serde_json::Error> {
    let start = buf.len();
    #[cfg(feature = "fast-json")]
    {
        const PRIVATE: &[u8] = b"\"$serde_json::private::";
        if sonic_rs::to_writer((&mut *buf).writer(), value).is_ok()
            && memchr::memmem::find(&buf[start..], PRIVATE).is_none()
        {
            return Ok(());
        }
        buf.truncate(start);
    }
    let written = serde_json::to_writer((&mut *buf).writer(), value);
    if written.is_err() {
        buf.truncate(start);
    }
    written
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut buf = BytesMut::with_capacity(128);
        match encode_into(&mut buf, &self.0) {
            Ok(()) => {
                let mut res = Response::new(Body::from(buf.freeze()));
                res.headers_mut()
                    .insert(header::CONTENT_TYPE, APPLICATION_JSON);
                res
            }
            Err(e) => ApiError::internal(format!("response did not serialize to JSON: {e}"))
                .into_response(),
        }
    }
}

impl<T> Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> From<T> for Json<T> {
    fn from(v: T) -> Self {
        Json(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
        let mut buf = BytesMut::from(&b"prefix "[..]);
        encode_into(&mut buf, v).unwrap();
        assert!(buf.starts_with(b"prefix "), "what was in the buffer stays");
        buf[7..].to_vec()
    }

    #[test]
    fn writes_what_serde_json_writes() {
        let text = "quote \" backslash \\ newline \n tab \t nul \u{0} bell \u{7} del \u{7f} é 漢 🦀 </script>";
        let long = "y".repeat(5000) + text;
        let mut keys = std::collections::BTreeMap::new();
        keys.insert(7u32, "seven");
        keys.insert(11u32, "eleven");
        let cases: Vec<serde_json::Value> = vec![
            serde_json::json!(text),
            serde_json::json!(long),
            serde_json::json!({"id": 12345, "neg": -2, "big": u64::MAX, "small": i64::MIN,
                "ok": true, "none": null, "list": [1, "two", [3], {"four": 4}], "": ""}),
            serde_json::to_value(&keys).unwrap(),
        ];
        for v in &cases {
            assert_eq!(encoded(v), serde_json::to_vec(v).unwrap(), "{v}");
        }
        // Floats: the same number, whichever shortest form is written.
        for f in [
            1.5,
            -0.0,
            1e21,
            1e-7,
            0.1 + 0.2,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            let back: f64 = serde_json::from_slice(&encoded(&f)).unwrap();
            assert_eq!(back.to_bits(), f.to_bits(), "{f}");
        }
        assert_eq!(encoded(&f64::NAN), b"null");
    }

    #[test]
    fn serde_json_private_types_are_written_as_serde_json_writes_them() {
        let raw =
            serde_json::value::RawValue::from_string(r#"{"pre":"formatted" , "n":[1,2]}"#.into())
                .unwrap();
        assert_eq!(encoded(&raw), br#"{"pre":"formatted" , "n":[1,2]}"#);
        #[derive(Serialize)]
        struct Wrapper<'a> {
            inner: &'a serde_json::value::RawValue,
            name: &'a str,
        }
        let w = Wrapper {
            inner: &raw,
            name: "around it",
        };
        assert_eq!(encoded(&w), serde_json::to_vec(&w).unwrap());
    }

    #[test]
    fn an_error_leaves_the_buffer_as_it_was() {
        let mut bad = std::collections::HashMap::new();
        bad.insert(vec![1u8], 1);
        let mut buf = BytesMut::from(&b"kept"[..]);
        assert!(encode_into(&mut buf, &bad).is_err());
        assert_eq!(&buf[..], b"kept");
    }
}
