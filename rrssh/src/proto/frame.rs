//! Frames: the unit of the wire protocol.
//!
//! Every frame is `len: u32 | type: u8 | flags: u8 | call: u32 | payload`, big-endian, where
//! `len` counts the bytes after itself (so `len = 6 + payload length`).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::CallId;

/// Size of the fixed frame header, `len` included.
pub const HEADER_LEN: usize = 10;

/// Flag: no more frames follow in this direction for this call.
pub const FLAG_END: u8 = 0x01;

/// Flag: a receiver that does not know this frame's type ignores the frame (revision 1.1; sent
/// only to peers whose HELLO lists the capability [`CAP_SKIP`](super::hello::CAP_SKIP)). On a
/// known type it means nothing.
pub const FLAG_SKIP: u8 = 0x80;

/// Flag bits with no meaning: a receiver treats any of them set as a violation.
pub const RESERVED_FLAGS: u8 = !(FLAG_END | FLAG_SKIP);

/// Largest PING payload a receiver accepts (a PONG echoes it, so the sender of pings decides
/// what the receiver must write back).
pub const MAX_PING: usize = 64;

/// The frame types of protocol version 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameType {
    /// First frame each side sends: version and settings (JSON).
    Hello = 0x01,
    /// A call's request head: method, path and query, headers.
    Request = 0x02,
    /// A call's response head: status, headers.
    Response = 0x03,
    /// A chunk of a request or response body.
    Data = 0x04,
    /// End of a body with trailers (for streams: how the stream ended).
    End = 0x05,
    /// The caller abandons the call.
    Cancel = 0x06,
    /// The receiver grants the sender more body bytes on a call.
    Window = 0x07,
    /// The call failed before or instead of a response: status and message.
    Reset = 0x08,
    /// Keepalive probe.
    Ping = 0x09,
    /// Keepalive answer.
    Pong = 0x0a,
    /// The sender is closing the connection: last call id it handled, code, message.
    GoAway = 0x0b,
}

impl FrameType {
    /// The type for a byte, if it names one.
    pub fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0x01 => Self::Hello,
            0x02 => Self::Request,
            0x03 => Self::Response,
            0x04 => Self::Data,
            0x05 => Self::End,
            0x06 => Self::Cancel,
            0x07 => Self::Window,
            0x08 => Self::Reset,
            0x09 => Self::Ping,
            0x0a => Self::Pong,
            0x0b => Self::GoAway,
            _ => return None,
        })
    }
}

/// A decoded frame. Payloads are views into the read buffer (no copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The frame type.
    pub ty: FrameType,
    /// Flags ([`FLAG_END`]).
    pub flags: u8,
    /// The call the frame belongs to (0 for connection frames).
    pub call: CallId,
    /// The payload.
    pub payload: Bytes,
}

impl Frame {
    /// A frame.
    pub fn new(ty: FrameType, flags: u8, call: CallId, payload: Bytes) -> Self {
        Self {
            ty,
            flags,
            call,
            payload,
        }
    }

    /// Whether the END flag is set.
    pub fn is_end(&self) -> bool {
        self.flags & FLAG_END != 0
    }

    /// Writes the frame into `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        encode_parts(self.ty, self.flags, self.call, &self.payload, dst);
    }
}

/// Writes one frame from its parts.
pub fn encode_parts(ty: FrameType, flags: u8, call: CallId, payload: &[u8], dst: &mut BytesMut) {
    dst.reserve(HEADER_LEN + payload.len());
    dst.put_u32((6 + payload.len()) as u32);
    dst.put_u8(ty as u8);
    dst.put_u8(flags);
    dst.put_u32(call.get());
    dst.put_slice(payload);
}

/// A request or response head: the first line and the headers.
///
/// Request payload: `method_len: u8 | method | target_len: u16 | target | headers`.
/// Response payload: `status: u16 | headers`. Headers (also the END payload):
/// `count: u16 | (name_len: u16 | name | value_len: u16 | value)*`, names in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// A request head.
    Request {
        /// The method (`GET`, …, `STREAM`).
        method: String,
        /// Path and query (`/users/7?full=true`).
        target: String,
        /// Headers.
        headers: HeaderMap,
    },
    /// A response head.
    Response {
        /// The status code.
        status: u16,
        /// Headers.
        headers: HeaderMap,
    },
}

/// Why a payload did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {what}: {why}")]
pub struct PayloadError {
    /// Which payload.
    pub what: &'static str,
    /// What was wrong.
    pub why: String,
}

/// Why a head could not be written: a field is too long for its length prefix. Nothing is
/// written then (a value is never cut short).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode {what}: {len} bytes is over the limit of {limit}")]
pub struct EncodeError {
    /// Which field.
    pub what: &'static str,
    /// Its length.
    pub len: usize,
    /// The most its length prefix can say.
    pub limit: usize,
}

fn check_len(what: &'static str, len: usize, limit: usize) -> Result<(), EncodeError> {
    if len > limit {
        Err(EncodeError { what, len, limit })
    } else {
        Ok(())
    }
}

fn bad(what: &'static str, why: impl Into<String>) -> PayloadError {
    PayloadError {
        what,
        why: why.into(),
    }
}

/// Encodes a header block. A block with more than 65,535 headers, or a name or value over
/// 65,535 bytes, is an error and writes nothing.
pub fn encode_headers(headers: &HeaderMap, dst: &mut BytesMut) -> Result<(), EncodeError> {
    const MAX: usize = u16::MAX as usize;
    check_len("header count", headers.len(), MAX)?;
    for (name, value) in headers {
        check_len("header name", name.as_str().len(), MAX)?;
        check_len("header value", value.as_bytes().len(), MAX)?;
    }
    dst.put_u16(headers.len() as u16);
    for (name, value) in headers {
        dst.put_u16(name.as_str().len() as u16);
        dst.put_slice(name.as_str().as_bytes());
        dst.put_u16(value.as_bytes().len() as u16);
        dst.put_slice(value.as_bytes());
    }
    Ok(())
}

fn take<'a>(buf: &mut &'a [u8], n: usize, what: &'static str) -> Result<&'a [u8], PayloadError> {
    if buf.len() < n {
        return Err(bad(
            what,
            format!("needs {n} more bytes, has {}", buf.len()),
        ));
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

fn take_u16(buf: &mut &[u8], what: &'static str) -> Result<u16, PayloadError> {
    Ok(take(buf, 2, what)?.get_u16())
}

/// Decodes a header block, consuming it from `buf`.
pub fn decode_headers(buf: &mut &[u8]) -> Result<HeaderMap, PayloadError> {
    let count = take_u16(buf, "headers")? as usize;
    // Each header needs at least 4 bytes: bound the allocation by what is there.
    let mut map = HeaderMap::with_capacity(count.min(buf.len() / 4));
    for _ in 0..count {
        let n = take_u16(buf, "header name")? as usize;
        let name = HeaderName::from_bytes(take(buf, n, "header name")?)
            .map_err(|e| bad("header name", e.to_string()))?;
        let n = take_u16(buf, "header value")? as usize;
        let value = HeaderValue::from_bytes(take(buf, n, "header value")?)
            .map_err(|e| bad("header value", e.to_string()))?;
        map.append(name, value);
    }
    Ok(map)
}

impl Head {
    /// Encodes the head's payload; on error nothing is written.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            Head::Request {
                method,
                target,
                headers,
            } => encode_request(method, target, headers, dst),
            Head::Response { status, headers } => encode_response(*status, headers, dst),
        }
    }

    /// Decodes a REQUEST payload.
    pub fn decode_request(mut buf: &[u8]) -> Result<Head, PayloadError> {
        let n = take(&mut buf, 1, "request")?[0] as usize;
        let method = std::str::from_utf8(take(&mut buf, n, "method")?)
            .map_err(|_| bad("method", "not UTF-8"))?
            .to_owned();
        if method.is_empty() || !method.bytes().all(is_token_byte) {
            return Err(bad("method", "not an HTTP token"));
        }
        let n = take_u16(&mut buf, "target")? as usize;
        let target = std::str::from_utf8(take(&mut buf, n, "target")?)
            .map_err(|_| bad("target", "not UTF-8"))?
            .to_owned();
        let headers = decode_headers(&mut buf)?;
        if !buf.is_empty() {
            return Err(bad("request", format!("{} trailing bytes", buf.len())));
        }
        Ok(Head::Request {
            method,
            target,
            headers,
        })
    }

    /// Decodes a RESPONSE payload.
    pub fn decode_response(mut buf: &[u8]) -> Result<Head, PayloadError> {
        let status = take_u16(&mut buf, "status")?;
        let headers = decode_headers(&mut buf)?;
        if !buf.is_empty() {
            return Err(bad("response", format!("{} trailing bytes", buf.len())));
        }
        Ok(Head::Response { status, headers })
    }
}

/// Whether a byte may appear in an HTTP token (a method name).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Encodes a RESPONSE payload from borrowed parts; on error nothing is written.
pub fn encode_response(
    status: u16,
    headers: &HeaderMap,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    let start = dst.len();
    dst.put_u16(status);
    encode_headers(headers, dst).inspect_err(|_| dst.truncate(start))
}

/// Encodes a REQUEST payload from borrowed parts; on error nothing is written.
pub fn encode_request(
    method: &str,
    target: &str,
    headers: &HeaderMap,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    check_len("method", method.len(), u8::MAX as usize)?;
    check_len("request target", target.len(), u16::MAX as usize)?;
    let start = dst.len();
    dst.put_u8(method.len() as u8);
    dst.put_slice(method.as_bytes());
    dst.put_u16(target.len() as u16);
    dst.put_slice(target.as_bytes());
    encode_headers(headers, dst).inspect_err(|_| dst.truncate(start))
}

/// A RESET: the status and message that end a call in the sender's direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reset {
    /// The status the call fails with.
    pub status: u16,
    /// Why (UTF-8; invalid bytes are replaced).
    pub message: String,
}

impl Reset {
    /// The payload: `status: u16 | message (UTF-8, rest of payload)`.
    pub fn encode(status: u16, message: &str) -> Bytes {
        let mut b = BytesMut::with_capacity(2 + message.len());
        b.put_u16(status);
        b.put_slice(message.as_bytes());
        b.freeze()
    }

    /// Decodes a payload.
    pub fn decode(mut buf: &[u8]) -> Result<Self, PayloadError> {
        let status = take_u16(&mut buf, "reset")?;
        Ok(Self {
            status,
            message: String::from_utf8_lossy(buf).into_owned(),
        })
    }
}

/// A GOAWAY: the sender takes no new calls (and, after a violation, closes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoAway {
    /// The highest call id the sender saw from the receiver.
    pub last_call: CallId,
    /// Why, as a code ([`goaway`]).
    pub code: u16,
    /// Why, in words (UTF-8; invalid bytes are replaced).
    pub message: String,
}

impl GoAway {
    /// The payload: `last_call: u32 | code: u16 | message (UTF-8, rest)`.
    pub fn encode(last_call: CallId, code: u16, message: &str) -> Bytes {
        let mut b = BytesMut::with_capacity(6 + message.len());
        b.put_u32(last_call.get());
        b.put_u16(code);
        b.put_slice(message.as_bytes());
        b.freeze()
    }

    /// Decodes a payload.
    pub fn decode(mut buf: &[u8]) -> Result<Self, PayloadError> {
        let last_call = CallId::new(take(&mut buf, 4, "goaway")?.get_u32());
        let code = take_u16(&mut buf, "goaway")?;
        Ok(Self {
            last_call,
            code,
            message: String::from_utf8_lossy(buf).into_owned(),
        })
    }
}

/// A WINDOW payload: `increment: u32`.
pub fn decode_window(mut buf: &[u8]) -> Result<u32, PayloadError> {
    if buf.len() != 4 {
        return Err(bad(
            "window",
            format!("expected 4 bytes, got {}", buf.len()),
        ));
    }
    Ok(buf.get_u32())
}

/// A WINDOW payload.
pub fn encode_window(increment: u32) -> [u8; 4] {
    increment.to_be_bytes()
}

/// GOAWAY codes.
pub mod goaway {
    /// Orderly shutdown.
    pub const NORMAL: u16 = 0;
    /// The peer broke the protocol.
    pub const PROTOCOL_ERROR: u16 = 1;
    /// A frame was larger than the limit.
    pub const FRAME_TOO_LARGE: u16 = 2;
    /// No common protocol version.
    pub const VERSION: u16 = 3;
    /// The peer went silent (keepalive timeout).
    pub const TIMEOUT: u16 = 4;
    /// A server limit refused the connection (for example connections per key).
    pub const LIMIT: u16 = 5;
    /// The peer sent body bytes past a window (per call or for the connection).
    pub const FLOW_CONTROL: u16 = 6;
    /// The peer went on sending while not reading the answers its frames made us write (past
    /// the read-ahead bound; revision 1.1, before which this was code 5).
    pub const NOT_READING: u16 = 7;
}
