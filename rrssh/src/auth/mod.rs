#![doc = include_str!("../docs/auth.md")]

mod future;
mod layer;
mod rule;
#[cfg(any(feature = "gateway", feature = "web-terminal", test))]
pub(crate) mod secret;
mod service;

pub use self::future::AuthorizeFuture;
pub use self::layer::AuthorizeLayer;
pub use self::rule::Rule;
pub use self::service::Authorize;
pub use crate::extract::grants::{Grants, GrantsError};

/// A layer that lets through peers granted `scope` (see [`Rule::scope`]).
pub fn require_scope(scope: impl Into<String>) -> AuthorizeLayer {
    AuthorizeLayer::new(Rule::scope(scope))
}

/// A layer that lets through peers satisfying `rule`.
pub fn require(rule: Rule) -> AuthorizeLayer {
    AuthorizeLayer::new(rule)
}
