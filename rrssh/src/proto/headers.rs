//! Header and trailer names with a meaning on the wire (`PROTOCOL.md` §3).

/// The caller's deadline: a relative budget in whole milliseconds, counted from when the
/// callee receives the `REQUEST`. It covers the whole call, a stream's body included.
pub const TIMEOUT: &str = "rrssh-timeout";

/// An opaque id for tracing, passed to the handler unchanged.
pub const REQUEST_ID: &str = "rrssh-request-id";

/// The trailer that says how a stream ended: [`END_OK`] or [`END_ERROR`].
pub const TRAILER_END: &str = "rrssh-end";

/// With `rrssh-end: error`: the standard error JSON.
pub const TRAILER_ERROR: &str = "rrssh-error";

/// The stream finished.
pub const END_OK: &str = "ok";

/// The stream failed after the items already sent.
pub const END_ERROR: &str = "error";

/// The content type of a stream's body: newline-delimited JSON.
pub const NDJSON: &str = "application/x-ndjson";
