//! Request methods: the standard ones, rrssh's `STREAM`, and the aliases of korv (a Python
//! framework of REST over reverse SSH, whose clients say `STORE` and `UPDATE`).

use std::sync::LazyLock;

use http::Method;

/// The `STREAM` method: the caller expects a stream of JSON items back.
pub static STREAM: LazyLock<Method> =
    LazyLock::new(|| Method::from_bytes(b"STREAM").unwrap_or_else(|_| unreachable!("valid token")));

/// Maps korv's verbs onto the ones rrssh routes: `STORE` is `POST`, `UPDATE` is `PATCH`.
/// Every other method is returned unchanged.
pub fn normalize(method: Method) -> Method {
    match method.as_str() {
        "STORE" => Method::POST,
        "UPDATE" => Method::PATCH,
        _ => method,
    }
}

/// Parses a method name (`"GET"`, `"STREAM"`, …), normalizing korv's verbs.
pub fn parse(name: &str) -> Option<Method> {
    match name {
        "GET" => Some(Method::GET),
        "POST" => Some(Method::POST),
        "PUT" => Some(Method::PUT),
        "PATCH" => Some(Method::PATCH),
        "DELETE" => Some(Method::DELETE),
        "STREAM" => Some(STREAM.clone()),
        other => Method::from_bytes(other.as_bytes()).ok().map(normalize),
    }
}
