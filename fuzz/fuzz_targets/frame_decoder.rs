//! Feeds arbitrary bytes to the frame decoder and every payload parser.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rrssh::proto::frame::{self, Head};
use rrssh::proto::Codec;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    let mut codec = Codec::new(64 * 1024);
    while let Ok(Some(f)) = codec.decode(&mut buf) {
        assert!(f.payload.len() <= 64 * 1024);
        let _ = Head::decode_request(&f.payload);
        let _ = Head::decode_response(&f.payload);
        let _ = frame::decode_headers(&mut &f.payload[..]);
        let _ = frame::Reset::decode(&f.payload);
        let _ = frame::GoAway::decode(&f.payload);
        let _ = frame::decode_window(&f.payload);
    }
});
