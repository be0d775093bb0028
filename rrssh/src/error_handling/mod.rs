//! Turning the errors of tower middleware into responses, so fallible layers (load shedding,
//! tower's timeout, rate limits) can wrap a [`Router`](crate::Router)'s routes.
//!
//! A `Router` serves responses, never errors: every layer around its routes must answer. Put
//! [`HandleErrorLayer`] outside the fallible ones:
//!
//! ```
//! use rrssh::error_handling::HandleErrorLayer;
//! use rrssh::Router;
//! use tower::ServiceBuilder;
//!
//! let app: Router = Router::new().layer(
//!     ServiceBuilder::new()
//!         .layer(HandleErrorLayer::standard())
//!         .load_shed()
//!         .layer(tower::limit::GlobalConcurrencyLimitLayer::new(64)),
//! );
//! ```

mod future;
mod layer;
pub(crate) mod panic;
mod service;

pub use self::future::HandleErrorFuture;
pub use self::layer::HandleErrorLayer;
pub use self::service::HandleError;

use http::StatusCode;

use crate::{ApiError, BoxError, IntoResponse, Response};

/// The standard mapping: tower's `Overloaded` → 503, `Elapsed` → 504, anything else → 500,
/// each with the standard error JSON.
pub fn standard_response(err: BoxError) -> Response {
    let (status, message) = if err.is::<tower::load_shed::error::Overloaded>() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the service is overloaded; try again later".to_owned(),
        )
    } else if err.is::<tower::timeout::error::Elapsed>() {
        (
            StatusCode::GATEWAY_TIMEOUT,
            "the call took too long".to_owned(),
        )
    } else {
        tracing::error!(error = %err, "middleware failed");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error".to_owned(),
        )
    };
    ApiError::new(status, message).into_response()
}
