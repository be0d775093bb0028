use tower_layer::Layer;

use super::{Authorize, Rule};

/// Applies a [`Rule`] to every call of the wrapped service (see [`Authorize`]).
#[derive(Debug, Clone)]
pub struct AuthorizeLayer {
    rule: Rule,
}

impl AuthorizeLayer {
    /// Lets through the calls whose peer satisfies `rule`.
    pub fn new(rule: Rule) -> Self {
        Self { rule }
    }
}

impl<S> Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Authorize<S> {
        Authorize::new(inner, self.rule.clone())
    }
}
