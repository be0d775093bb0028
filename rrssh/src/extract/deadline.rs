use std::convert::Infallible;
use std::time::Duration;

use http::request::Parts;
use tokio::time::Instant;

use super::FromRequestParts;
use crate::proto::{Budget, BudgetError};

/// The request header carrying the caller's time budget, in whole milliseconds, relative to
/// when the request was received (the wire protocol carries it the same way).
pub const TIMEOUT_HEADER: &str = crate::proto::headers::TIMEOUT;

/// The caller's deadline, if it set one.
///
/// The router answers 504 without running the handler when the deadline has already passed,
/// and stops the handler (answering 504) when it passes while the handler runs.
/// A handler can look at the remaining time to cut its own work short:
///
/// ```
/// use rrssh::extract::Deadline;
///
/// async fn search(deadline: Deadline) -> String {
///     match deadline.remaining() {
///         Some(left) => format!("{} ms left", left.as_millis()),
///         None => "no deadline".to_owned(),
///     }
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Deadline(pub Option<Instant>);

impl Deadline {
    /// A deadline `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Self(Some(Instant::now() + budget))
    }

    /// The time left before the deadline (zero once passed); `None` without a deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.0
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        self.0.is_some_and(|at| at <= Instant::now())
    }

    /// Reads the deadline of a request: the `Deadline` extension the transport set, else the
    /// [`TIMEOUT_HEADER`] taken relative to now ([`Budget`]'s rules). `Err` if the header is
    /// malformed.
    pub(crate) fn of(
        parts_ext: &http::Extensions,
        headers: &http::HeaderMap,
    ) -> Result<Self, BudgetError> {
        if let Some(d) = parts_ext.get::<Deadline>() {
            return Ok(*d);
        }
        Ok(Deadline(
            Budget::of_headers(headers)?.map(|b| Instant::now() + b.as_duration()),
        ))
    }
}

/// Set by a carrier that times the call itself (a connection: one timer per call, whose
/// expiry it answers as the wire protocol says); the router then keeps no timer of its own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimedByCarrier;

impl<S: Send + Sync> FromRequestParts<S> for Deadline {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Deadline::of(&parts.extensions, &parts.headers).unwrap_or_default())
    }
}
