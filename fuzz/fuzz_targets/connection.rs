//! Feeds arbitrary bytes, after a valid HELLO, to the protocol core of a connection: it must
//! never panic, never queue more output than its bound, and say GOAWAY whenever it closes.
#![no_main]

use bytes::{BufMut, BytesMut};
use libfuzzer_sys::fuzz_target;
use rrssh::proto::conn::OUTPUT_HIGH;
use rrssh::proto::{Conn, Event, Limits, Role};

const HELLO: &[u8] =
    br#"{"version":1,"max_frame":1048576,"window":4096,"max_calls":8,"conn_window":16384}"#;

fuzz_target!(|data: &[u8]| {
    let mut limits = Limits::default();
    limits.initial_window = 4096;
    limits.connection_window = 16384;
    limits.max_concurrent_calls = 8;
    let mut c = Conn::new(Role::Acceptor, limits, None);
    let mut buf = BytesMut::new();
    buf.put_u32((6 + HELLO.len()) as u32);
    buf.put_slice(&[1, 0, 0, 0, 0, 0]);
    buf.put_slice(HELLO);
    // Fed in two pieces, as a carrier may cut it.
    let half = data.len() / 2;
    for piece in [&data[..half], &data[half..]] {
        buf.extend_from_slice(piece);
        c.handle_input(&mut buf);
        while let Some(ev) = c.poll_event() {
            if let Event::Data { call, data, .. } = ev {
                c.consume(call, data.len());
            }
        }
        assert!(c.pending_output() < OUTPUT_HIGH + (1 << 20));
        let out = c.take_output().unwrap_or_default();
        if c.closed_reason().is_some() {
            assert!(!out.is_empty(), "a violation is said with GOAWAY");
            break;
        }
    }
});
