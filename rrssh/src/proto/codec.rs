//! Cutting a byte stream into [`Frame`]s, with the frame size limit enforced before any
//! allocation.

use bytes::{Buf, BytesMut};

use super::CallId;
use super::frame::{FLAG_SKIP, Frame, FrameType, HEADER_LEN, RESERVED_FLAGS};

/// Why the byte stream is not a valid frame sequence. Each is fatal for the connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A frame declared a size over the limit.
    #[error("frame of {size} bytes is over the limit of {limit}")]
    TooLarge {
        /// The declared size, header included.
        size: u64,
        /// The limit.
        limit: u32,
    },
    /// A frame declared a length too small to hold its header.
    #[error("frame length {0} is shorter than the 6-byte header")]
    TooShort(u32),
    /// An unknown frame type.
    #[error("unknown frame type 0x{0:02x}")]
    UnknownType(u8),
    /// A flag bit that version 1 reserves was set.
    #[error("reserved flag bits set: 0x{0:02x}")]
    ReservedFlags(u8),
}

/// Encodes and decodes frames, refusing frames larger than `max_frame`.
#[derive(Debug, Clone, Copy)]
pub struct Codec {
    max_frame: u32,
    skip_unknown: bool,
}

impl Codec {
    /// A codec accepting frames of at most `max_frame` bytes, header included. Frames of an
    /// unknown type are errors until [`skip_flagged`](Self::skip_flagged).
    pub fn new(max_frame: u32) -> Self {
        Self {
            max_frame,
            skip_unknown: false,
        }
    }

    /// From now on, frames of an unknown type flagged [`FLAG_SKIP`] are skipped (after the
    /// HELLO: the first frame must be a HELLO whatever it is flagged).
    pub fn skip_flagged(&mut self) {
        self.skip_unknown = true;
    }
}

impl Codec {
    /// Takes one whole frame off the front of `src`, if there is one. `Ok(None)` means more
    /// bytes are needed; any error is fatal for the connection.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        // Each turn takes one frame; skipped frames loop (never recurse: a flood of them
        // costs time, not stack).
        loop {
            if src.len() < 4 {
                return Ok(None);
            }
            let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]);
            if len < 6 {
                return Err(DecodeError::TooShort(len));
            }
            let size = u64::from(len) + 4;
            if size > u64::from(self.max_frame) {
                return Err(DecodeError::TooLarge {
                    size,
                    limit: self.max_frame,
                });
            }
            let unknown = src.len() >= 5 && FrameType::from_u8(src[4]).is_none();
            let skippable = self.skip_unknown && src.len() >= 6 && src[5] & FLAG_SKIP != 0;
            if unknown && src.len() >= 6 && !skippable {
                return Err(DecodeError::UnknownType(src[4]));
            }
            if src.len() >= 6 && src[5] & RESERVED_FLAGS != 0 {
                return Err(DecodeError::ReservedFlags(src[5]));
            }
            let size = size as usize;
            if src.len() < size {
                src.reserve(size - src.len());
                return Ok(None);
            }
            if unknown {
                // A type we do not know, flagged SKIP: ignored.
                src.advance(size);
                continue;
            }
            let mut frame = src.split_to(size);
            frame.advance(4);
            let ty = FrameType::from_u8(frame.get_u8()).ok_or(DecodeError::UnknownType(0))?;
            let flags = frame.get_u8();
            let call = CallId::new(frame.get_u32());
            debug_assert_eq!(HEADER_LEN, 10);
            return Ok(Some(Frame {
                ty,
                flags,
                call,
                payload: frame.freeze(),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use proptest::prelude::*;

    use super::*;
    use crate::proto::frame::{self, Head};

    fn any_type() -> impl Strategy<Value = FrameType> {
        (1u8..=0x0b).prop_map(|b| FrameType::from_u8(b).unwrap())
    }

    proptest! {
        #[test]
        fn any_frame_round_trips(ty in any_type(), flags in 0u8..2, call: u32, payload in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let f = Frame::new(ty, flags, CallId::new(call), Bytes::from(payload));
            let mut buf = BytesMut::new();
            f.encode(&mut buf);
            // Feed it in two pieces, as a carrier may.
            let split = buf.len() / 2;
            let mut first = buf.split_to(split);
            let mut codec = Codec::new(1 << 20);
            let mut got = codec.decode(&mut first).unwrap();
            if got.is_none() {
                first.extend_from_slice(&buf);
                got = codec.decode(&mut first).unwrap();
            }
            prop_assert_eq!(got, Some(f));
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let mut buf = BytesMut::from(&data[..]);
            let mut codec = Codec::new(4096);
            while let Ok(Some(f)) = codec.decode(&mut buf) {
                let _ = Head::decode_request(&f.payload);
                let _ = Head::decode_response(&f.payload);
                let _ = frame::Reset::decode(&f.payload);
                let _ = frame::GoAway::decode(&f.payload);
                let _ = frame::decode_window(&f.payload);
            }
        }

        #[test]
        fn heads_round_trip(method in "[A-Z]{1,10}", target in "/[a-z0-9/?=&]{0,64}", names in proptest::collection::vec("[a-z][a-z0-9-]{0,20}", 0..8), status in 100u16..600) {
            let mut headers = http::HeaderMap::new();
            for n in &names {
                headers.append(http::HeaderName::from_bytes(n.as_bytes()).unwrap(), http::HeaderValue::from_static("v"));
            }
            let req = Head::Request { method, target, headers: headers.clone() };
            let mut b = BytesMut::new();
            req.encode(&mut b).unwrap();
            prop_assert_eq!(Head::decode_request(&b).unwrap(), req);
            let res = Head::Response { status, headers };
            let mut b = BytesMut::new();
            res.encode(&mut b).unwrap();
            prop_assert_eq!(Head::decode_response(&b).unwrap(), res);
        }
    }

    #[test]
    fn oversized_frame_is_refused_before_allocating() {
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 0x04][..]);
        match Codec::new(1 << 20).decode(&mut buf) {
            Err(DecodeError::TooLarge { size, limit }) => {
                assert_eq!((size, limit), (0xffff_ffff + 4, 1 << 20))
            }
            other => panic!("{other:?}"),
        }
        assert!(buf.capacity() < 1024, "no allocation for a refused frame");
    }

    #[test]
    fn unknown_type_and_short_length_are_errors() {
        let mut buf = BytesMut::from(&[0, 0, 0, 6, 0x7f, 0, 0, 0, 0, 1][..]);
        assert!(matches!(
            Codec::new(1024).decode(&mut buf),
            Err(DecodeError::UnknownType(0x7f))
        ));
        let mut buf = BytesMut::from(&[0, 0, 0, 2, 1, 0][..]);
        assert!(matches!(
            Codec::new(1024).decode(&mut buf),
            Err(DecodeError::TooShort(2))
        ));
    }

    #[test]
    fn unknown_types_flagged_skip_are_skipped_whole() {
        // An unknown type with SKIP, then a PING: the first is skipped, the PING decoded,
        // also when the skipped frame arrives in pieces.
        let skipped = [0, 0, 0, 9, 0x7f, 0x80, 0, 0, 0, 0, 1, 2, 3];
        let ping = [0, 0, 0, 6, 0x09, 0, 0, 0, 0, 0];
        let mut before_hello = BytesMut::from(&skipped[..]);
        assert!(matches!(
            Codec::new(1024).decode(&mut before_hello),
            Err(DecodeError::UnknownType(0x7f))
        ));
        let mut codec = Codec::new(1024);
        codec.skip_flagged();
        let mut buf = BytesMut::from(&skipped[..7]);
        assert!(matches!(codec.decode(&mut buf), Ok(None)));
        buf.extend_from_slice(&skipped[7..]);
        buf.extend_from_slice(&ping);
        let f = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(f.ty, FrameType::Ping);
        assert!(buf.is_empty());
        // SKIP on a known type means nothing.
        let mut buf = BytesMut::from(&[0, 0, 0, 6, 0x09, 0x80, 0, 0, 0, 0][..]);
        assert_eq!(
            Codec::new(1024).decode(&mut buf).unwrap().unwrap().ty,
            FrameType::Ping
        );
        // Still bounded: a skippable frame over the limit is refused before it is read.
        let mut buf = BytesMut::from(&[0, 0, 8, 0, 0x7f, 0x80][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(DecodeError::TooLarge { .. })
        ));
        // A flood of skipped frames in one buffer: a loop, not a recursion.
        let mut buf = BytesMut::new();
        for _ in 0..200_000 {
            buf.extend_from_slice(&[0, 0, 0, 6, 0x7f, 0x80, 0, 0, 0, 0]);
        }
        buf.extend_from_slice(&ping);
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap().ty, FrameType::Ping);
    }

    #[test]
    fn reserved_flags_are_errors() {
        let mut buf = BytesMut::from(&[0, 0, 0, 6, 0x06, 0x02, 0, 0, 0, 1][..]);
        assert!(matches!(
            Codec::new(1024).decode(&mut buf),
            Err(DecodeError::ReservedFlags(0x02))
        ));
    }

    #[test]
    fn oversized_header_values_are_refused_not_cut() {
        let mut headers = http::HeaderMap::new();
        let long = "v".repeat(70_000);
        headers.insert("x-long", http::HeaderValue::from_str(&long).unwrap());
        let mut b = BytesMut::new();
        let e = frame::encode_request("GET", "/", &headers, &mut b).unwrap_err();
        assert_eq!((e.what, e.len), ("header value", 70_000));
        assert!(b.is_empty(), "nothing written");
        let e = frame::encode_request(&"M".repeat(300), "/", &http::HeaderMap::new(), &mut b)
            .unwrap_err();
        assert_eq!(e.what, "method");
        assert!(b.is_empty());
    }

    #[test]
    fn header_count_cannot_force_a_large_allocation() {
        // count = 65535 with no header bytes behind it.
        let buf = [0xff, 0xff];
        assert!(frame::decode_headers(&mut &buf[..]).is_err());
    }
}
