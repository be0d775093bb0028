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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn_window: Option<u32>,
    /// Service name (reverse mode), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
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
        }
    }

    /// Parses and checks a peer's HELLO payload: every rule a receiver must check.
    pub fn parse(payload: &[u8]) -> Result<Hello, HelloError> {
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
        if let Some(s) = &hello.service
            && (s.is_empty() || s.len() > MAX_SERVICE_NAME)
        {
            return Err(HelloError::Invalid(format!(
                "service name of {} bytes (1 to {MAX_SERVICE_NAME} allowed)",
                s.len()
            )));
        }
        Ok(hello)
    }
}

/// The longest service name a HELLO may carry, in bytes.
pub const MAX_SERVICE_NAME: usize = 255;

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
