//! The rrssh wire protocol, version 1, without I/O: frames and their codec, the HELLO, limits,
//! and [`Conn`], the state machine of one connection (bytes in; frames out and events up).
//! It knows nothing of tokio, SSH, routers or clients: [`connection`](crate::connection)
//! drives it over any byte stream.
//!
//! See `PROTOCOL.md` at the repository root for the byte-level specification.

pub mod call_id;
pub mod codec;
pub mod conn;
pub mod deadline;
pub mod frame;
pub mod headers;
pub mod hello;
pub mod limits;

pub use self::call_id::CallId;
pub use self::codec::{Codec, DecodeError};
pub use self::conn::{Conn, Event, Role, SendError};
pub use self::deadline::{Budget, BudgetError};
pub use self::frame::{Frame, FrameType, Head};
pub use self::hello::{Hello, HelloError};
pub use self::limits::Limits;

/// The protocol version this crate speaks.
pub const VERSION: u16 = 1;
