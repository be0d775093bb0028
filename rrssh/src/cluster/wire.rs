//! How a call crosses from one hub to another over NATS: a head as JSON, then the body.
//!
//! A message is `u32` (big-endian) head length, the head, and the body bytes. Headers travel as
//! they are (the first hub already set the caller's `rrssh-caller-*` headers and the deadline
//! left in `rrssh-timeout`).

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// A request for the service `service` on the hub that holds it.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct CallHead {
    /// The call's id: names its stream and credit subjects.
    pub(super) call: String,
    pub(super) service: String,
    pub(super) method: String,
    pub(super) target: String,
    pub(super) headers: Vec<(String, String)>,
    /// More of the body follows as chunks on `rrssh.upload.CALL` (this message holds the
    /// first), once the serving hub grants credit.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) upload: bool,
}

/// The answer, or why there is none.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct AnswerHead {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    /// More of the body follows as chunks on `rrssh.stream.CALL` (this message holds the first).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) stream: bool,
    /// The body's trailers (a stream's end marker), if it had any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) trailers: Option<Vec<(String, String)>>,
    /// `unavailable` or `timeout` when the call did not reach the service's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) error: Option<(String, String)>,
}

pub(super) fn encode<H: Serialize>(head: &H, body: &[u8]) -> Bytes {
    let head = serde_json::to_vec(head).unwrap_or_default();
    let mut out = BytesMut::with_capacity(4 + head.len() + body.len());
    out.put_u32(u32::try_from(head.len()).unwrap_or(u32::MAX));
    out.put_slice(&head);
    out.put_slice(body);
    out.freeze()
}

pub(super) fn decode<H: for<'de> Deserialize<'de>>(msg: &Bytes) -> Result<(H, Bytes), String> {
    let len = msg
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or("a cluster message shorter than its head length")?;
    let head = msg
        .get(4..4 + len)
        .ok_or("a cluster message shorter than its head")?;
    let head =
        serde_json::from_slice(head).map_err(|e| format!("a bad cluster message head: {e}"))?;
    Ok((head, msg.slice(4 + len..)))
}

pub(super) fn headers_of(map: &http::HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect()
}

pub(super) fn header_map(list: &[(String, String)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (k, v) in list {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(v),
        ) {
            map.append(k, v);
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_short_messages() {
        let head = CallHead {
            call: "c1".into(),
            service: "billing".into(),
            method: "POST".into(),
            target: "/x?y=1".into(),
            headers: vec![("a".into(), "b".into())],
            upload: false,
        };
        let msg = encode(&head, b"body");
        let (back, body): (CallHead, Bytes) = decode(&msg).unwrap();
        assert_eq!(
            (back.service.as_str(), &body[..]),
            ("billing", &b"body"[..])
        );
        assert!(decode::<CallHead>(&Bytes::from_static(b"\0\0")).is_err());
        assert!(decode::<CallHead>(&Bytes::from_static(b"\0\0\0\x09{}")).is_err());
    }
}
