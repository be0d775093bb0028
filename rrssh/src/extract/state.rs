use std::convert::Infallible;
use std::ops::{Deref, DerefMut};

use http::request::Parts;

use super::{FromRef, FromRequestParts};

/// The router's state, or a part of it (see [`FromRef`]), given with
/// [`Router::with_state`](crate::Router::with_state).
#[derive(Debug, Default, Clone, Copy)]
pub struct State<T>(pub T);

impl<S, T> FromRequestParts<S> for State<T>
where
    T: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Infallible;

    async fn from_request_parts(_: &mut Parts, state: &S) -> Result<Self, Infallible> {
        Ok(State(T::from_ref(state)))
    }
}

impl<T> Deref for State<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for State<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}
