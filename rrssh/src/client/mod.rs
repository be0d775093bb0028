//! Calling rrssh services: the transport-agnostic [`Call`] abstraction, typed call decoding
//! ([`FromResponse`]), streams of items ([`ClientStream`]) and an untyped request builder
//! ([`CallExt`]).
//!
//! Every route attribute generates a typed call next to its handler, so the same definition
//! serves and calls:
//!
//! ```
//! # use rrssh::{get, routes, Json, Path, Router, test::TestClient};
//! #[get("/users/{id}")]
//! async fn get_user(Path(id): Path<u64>) -> Json<String> {
//!     Json(format!("user {id}"))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rrssh::client::Error> {
//! let client = TestClient::new(Router::new().mount(routes![get_user]));
//! let name: String = get_user::call(&client, 7).await?;
//! assert_eq!(name, "user 7");
//! # Ok(()) }
//! ```

mod backoff;
mod call;
mod deadline;
mod error;
mod from_response;
pub(crate) mod path;
mod request;
mod request_id;
mod retry;
mod stream;

pub use self::backoff::Backoff;
pub use self::call::Call;
pub use self::deadline::{DefaultDeadline, DefaultDeadlineLayer};
pub use self::error::Error;
pub use self::from_response::{FromResponse, check_status};
pub use self::request::{CallExt, RequestBuilder};
pub use self::request_id::{REQUEST_ID_HEADER, RequestId, RequestIdLayer, new_request_id};
pub use self::retry::RetryPolicy;
pub use self::stream::ClientStream;
