//! The rrssh wire protocol, version 1: frames, their codec, limits, and the connection engine
//! that multiplexes calls in both directions over one ordered byte stream.
//!
//! See `PROTOCOL.md` at the repository root for the byte-level specification.

pub mod codec;
pub mod connection;
pub mod frame;
pub mod limits;

pub use self::codec::{Codec, DecodeError};
pub use self::connection::{Connection, ConnectionConfig, Role};
pub use self::frame::{Frame, FrameType, Head};
pub use self::limits::Limits;

/// The protocol version this crate speaks.
pub const VERSION: u16 = 1;
