//! Protocol limits and their defaults.

/// Limits a connection enforces; each has a documented default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest frame accepted, header included (default 1 MiB). A larger frame is a protocol
    /// violation: the connection answers GOAWAY and closes.
    pub max_frame: u32,
    /// Largest DATA payload sent in one frame (default 64 KiB; at most `max_frame - 10`).
    pub max_data_chunk: u32,
    /// Initial per-call window in bytes, for each direction (default 1 MiB): how much body a
    /// sender may have in flight before the receiver grants more.
    pub initial_window: u32,
    /// Most calls the peer may have in flight to us at once (default 1024); one more is
    /// answered with RESET 429.
    pub max_concurrent_calls: u32,
    /// Largest head (method, path, headers) accepted (default 64 KiB).
    pub max_head: u32,
    /// Connection window in bytes (default 16 MiB): how much body, over all calls together,
    /// the peer may have sent that the application has not yet consumed. It bounds what one
    /// connection buffers however many calls are open (see `PROTOCOL.md` §5).
    pub connection_window: u32,
    /// How many bytes of request bodies one connection's handlers may hold while reading them
    /// whole (`Json`, `Bytes`, `String`; default 64 MiB). A read that would pass it fails with
    /// 503. The windows bound what is buffered unread; this bounds what is collected.
    /// Enforced by the driver, not by the core.
    pub body_buffer: u32,
    /// How long a served call's request body may go without a byte while its handler waits for
    /// one (default 30 s); then the call is reset with 408. Enforced by the driver.
    pub body_idle_timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame: 1024 * 1024,
            max_data_chunk: 64 * 1024,
            initial_window: 1024 * 1024,
            max_concurrent_calls: 1024,
            max_head: 64 * 1024,
            connection_window: 16 * 1024 * 1024,
            body_buffer: 64 * 1024 * 1024,
            body_idle_timeout: std::time::Duration::from_secs(30),
        }
    }
}

impl Limits {
    /// The largest window either kind may announce: 2^31 − 1, as in HTTP/2.
    pub const MAX_WINDOW: u32 = (1 << 31) - 1;
    /// The smallest `max_frame` a peer may announce: enough for any head under the default
    /// limits and a useful DATA chunk.
    pub const MIN_FRAME: u32 = 16 * 1024;
}
