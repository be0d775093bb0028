/// Takes a sub-state out of the router's state, so that `State<T>` works for any `T` that
/// can be made from the whole state.
///
/// ```
/// use rrssh::extract::FromRef;
///
/// #[derive(Clone)]
/// struct AppState { db: Db, name: String }
/// #[derive(Clone)]
/// struct Db;
///
/// impl FromRef<AppState> for Db {
///     fn from_ref(s: &AppState) -> Db { s.db.clone() }
/// }
/// ```
pub trait FromRef<T> {
    /// Makes `Self` from a reference to the state.
    fn from_ref(input: &T) -> Self;
}

impl<T: Clone> FromRef<T> for T {
    fn from_ref(input: &T) -> T {
        input.clone()
    }
}
