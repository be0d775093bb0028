//! The responses sent when an extractor fails.
//!
//! Every rejection answers with the standard error JSON (see [`ApiError`]) and a status:
//! 400 for a malformed path, query or JSON syntax, 413 for a body over the limit,
//! 415 for a wrong content type, 422 for JSON that parses but does not fit the type,
//! 500 for a server-side setup mistake (a missing `Extension` or `Peer`).

use http::StatusCode;

use crate::ApiError;
use crate::response::{IntoResponse, Response};

macro_rules! define_rejection {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub(crate) ApiError);

        impl $name {
            pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
                Self(ApiError::new(status, message))
            }

            /// The status this rejection answers with.
            pub fn status(&self) -> StatusCode {
                self.0.status_code()
            }

            /// What went wrong, in plain words.
            pub fn body_text(&self) -> String {
                self.0.message.clone()
            }

            /// The error this rejection answers with.
            pub fn into_api_error(self) -> ApiError {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(&self.0, f)
            }
        }

        impl std::error::Error for $name {}

        impl IntoResponse for $name {
            fn into_response(self) -> Response {
                self.0.into_response()
            }
        }

        impl From<$name> for ApiError {
            fn from(r: $name) -> ApiError {
                r.0
            }
        }
    };
}

define_rejection!(
    /// [`Path`](super::Path) failed: the captures did not parse as the requested type (400).
    PathRejection
);
define_rejection!(
    /// [`Params`](super::Params) failed: the query string did not parse as the requested type (400).
    ParamsRejection
);
define_rejection!(
    /// [`Json`](crate::Json) failed: 400 (syntax), 413 (too large), 415 (content type), 422 (shape).
    JsonRejection
);
define_rejection!(
    /// Reading the body as `Bytes` or `String` failed: 400 (not UTF-8), 413 (too large).
    BodyRejection
);
define_rejection!(
    /// [`Extension<T>`](super::Extension) found no `T` in the request (500: a server setup mistake).
    ExtensionRejection
);
define_rejection!(
    /// [`Peer`](super::Peer) found no authenticated caller (401).
    PeerRejection
);
