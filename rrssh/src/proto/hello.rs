//! The HELLO frame: each side's version and limits, checked before anything else is accepted.

use serde::{Deserialize, Serialize};

use super::limits::Limits;

/// The HELLO payload (JSON).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct Hello {
    /// Protocol version.
    pub version: u16,
    /// Largest frame the sender accepts.
    pub max_frame: u32,
    /// Initial per-call window the sender grants.
    pub window: u32,
    /// Most concurrent calls the sender accepts.
    pub max_calls: u32,
    /// The sender's connection window (`PROTOCOL.md` §5). Absent from peers that predate it:
    /// they are not held to one, and are not sent connection `WINDOW` frames.
    #[serde(
        default,
        deserialize_with = "present_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub conn_window: Option<u32>,
    /// Service name (reverse mode), if any.
    #[serde(
        default,
        deserialize_with = "present_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub service: Option<String>,
    /// Capabilities (revision 1.1): what the sender understands beyond version 1.0. Unknown
    /// ones are ignored; absent from 1.0 peers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<String>,
}

impl Hello {
    /// The HELLO this end sends for these limits.
    pub fn new(limits: &Limits, service: Option<String>) -> Self {
        Self {
            version: super::VERSION,
            max_frame: limits.max_frame,
            window: limits.initial_window,
            max_calls: limits.max_concurrent_calls,
            conn_window: Some(limits.connection_window),
            service,
            caps: vec![CAP_SKIP.to_owned()],
        }
    }

    /// Whether the sender listed this capability.
    pub fn has_cap(&self, cap: &str) -> bool {
        self.caps.iter().any(|c| c == cap)
    }

    /// Parses and checks a peer's HELLO payload: every rule a receiver must check.
    pub fn parse(payload: &[u8]) -> Result<Hello, HelloError> {
        // A JSON object, not an array serde would also read into the fields.
        if payload.trim_ascii_start().first() != Some(&b'{') {
            return Err(HelloError::Malformed("not a JSON object".into()));
        }
        let hello: Hello =
            serde_json::from_slice(payload).map_err(|e| HelloError::Malformed(e.to_string()))?;
        if hello.version != super::VERSION {
            return Err(HelloError::Version(hello.version));
        }
        let window_ok = |w: u32| (1..=Limits::MAX_WINDOW).contains(&w);
        if !window_ok(hello.window) {
            return Err(HelloError::Invalid(format!(
                "window {} is outside 1..=2^31-1",
                hello.window
            )));
        }
        if let Some(w) = hello.conn_window
            && !window_ok(w)
        {
            return Err(HelloError::Invalid(format!(
                "conn_window {w} is outside 1..=2^31-1"
            )));
        }
        if hello.max_frame < Limits::MIN_FRAME {
            return Err(HelloError::Invalid(format!(
                "max_frame {} is under the minimum of {}",
                hello.max_frame,
                Limits::MIN_FRAME
            )));
        }
        if let Some(s) = &hello.service {
            check_service_name(s).map_err(HelloError::Invalid)?;
        }
        if hello.caps.len() > MAX_CAPS {
            return Err(HelloError::Invalid(format!(
                "{} capabilities (at most {MAX_CAPS})",
                hello.caps.len()
            )));
        }
        if let Some(c) = hello
            .caps
            .iter()
            .find(|c| c.is_empty() || c.len() > MAX_CAP_LEN)
        {
            return Err(HelloError::Invalid(format!(
                "a capability of {} bytes (1 to {MAX_CAP_LEN})",
                c.len()
            )));
        }
        Ok(hello)
    }
}

/// An optional string that, when present, is a string (`null` is refused, not read as absent).
fn present_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

/// An optional number that, when present, is a number (`null` is refused, not read as absent).
fn present_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    u32::deserialize(d).map(Some)
}

/// The longest service name a HELLO may carry, in bytes.
pub const MAX_SERVICE_NAME: usize = 64;

/// The most capabilities a HELLO may list.
pub const MAX_CAPS: usize = 64;

/// The longest capability name, in bytes.
pub const MAX_CAP_LEN: usize = 64;

/// The capability "I skip frames of types I do not know that carry
/// [`FLAG_SKIP`](super::frame::FLAG_SKIP)": extension frames may be sent to this peer.
pub const CAP_SKIP: &str = "skip";

/// Whether `name` may be a service name: 1 to [`MAX_SERVICE_NAME`] bytes of
/// `A-Z a-z 0-9 . _ - :`. `Err` says why not.
pub fn check_service_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_SERVICE_NAME {
        return Err(format!(
            "a service name is 1 to {MAX_SERVICE_NAME} characters (this one is {})",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')))
    {
        return Err(format!(
            "a service name is made of letters, digits, `.`, `_`, `-` and `:` (found {c:?})"
        ));
    }
    Ok(())
}

/// Why a peer's HELLO was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HelloError {
    /// Not JSON, or a required field is missing or of the wrong type.
    #[error("malformed HELLO: {0}")]
    Malformed(String),
    /// Another protocol version.
    #[error("unsupported protocol version {0}")]
    Version(u16),
    /// A field out of its range.
    #[error("invalid HELLO: {0}")]
    Invalid(String),
}
