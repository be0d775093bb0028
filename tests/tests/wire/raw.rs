//! A peer that speaks the protocol as bytes, as an implementation in another language would:
//! it writes frames built by hand and reads back what the Rust end sends.

use std::time::Duration;

use rrssh::connection::{Connection, ConnectionConfig};
use rrssh::proto::Role;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub(crate) use super::rules::frame;

/// A HELLO of protocol 1.1 with a connection window.
pub(crate) const HELLO: &str = r#"{"version":1,"max_frame":1048576,"window":1048576,"max_calls":8,"conn_window":16777216,"caps":["skip"]}"#;

/// One frame as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) ty: u8,
    pub(crate) flags: u8,
    pub(crate) call: u32,
    pub(crate) payload: Vec<u8>,
}

impl Frame {
    /// A RESET's or RESPONSE's status.
    pub(crate) fn status(&self) -> u16 {
        u16::from_be_bytes([self.payload[0], self.payload[1]])
    }

    /// A RESET's message.
    pub(crate) fn message(&self) -> String {
        String::from_utf8_lossy(&self.payload[2..]).into_owned()
    }

    /// A GOAWAY's code and message.
    pub(crate) fn goaway(&self) -> (u16, String) {
        assert_eq!(self.ty, 0x0b, "not a GOAWAY: {self:?}");
        (
            u16::from_be_bytes([self.payload[4], self.payload[5]]),
            String::from_utf8_lossy(&self.payload[6..]).into_owned(),
        )
    }

    /// Whether the END flag is set.
    pub(crate) fn end(&self) -> bool {
        self.flags & 1 != 0
    }
}

/// The raw side of a carrier whose other end runs a Rust [`Connection`].
pub(crate) struct Raw<IO> {
    pub(crate) io: IO,
    /// The Rust end, once its handshake is done.
    pub(crate) conn: Option<Connection>,
    /// The Rust end's HELLO, as JSON.
    pub(crate) hello: serde_json::Value,
}

impl Raw<tokio::io::DuplexStream> {
    /// A Rust end with this configuration, whose HELLO was read, after `first` was sent
    /// (a HELLO and whatever follows it). `conn` is `None` when the handshake failed.
    pub(crate) async fn start(config: ConnectionConfig, first: &[u8]) -> Self {
        let (mut raw, end) = tokio::io::duplex(4 << 20);
        let rust = tokio::spawn(Connection::start(end, config));
        raw.write_all(first).await.unwrap();
        let mut me = Raw {
            io: raw,
            conn: None,
            hello: serde_json::Value::Null,
        };
        let hello = me.frame().await.expect("the Rust end's HELLO");
        assert_eq!(hello.ty, 1, "{hello:?}");
        me.hello = serde_json::from_slice(&hello.payload).unwrap();
        me.conn = rust.await.unwrap().ok();
        me
    }

    /// An acceptor serving `service`, after our HELLO.
    pub(crate) async fn serving<S>(service: S) -> Self
    where
        S: tower::Service<
                rrssh::Request,
                Response = rrssh::Response,
                Error = std::convert::Infallible,
            > + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let config = ConnectionConfig::new(Role::Acceptor).serve(service);
        Self::start(config, &frame(1, 0, 0, HELLO.as_bytes())).await
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Raw<IO> {
    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
    }

    /// The next frame; `None` at the end of the carrier. Fails after 5 s of silence.
    pub(crate) async fn frame(&mut self) -> Option<Frame> {
        self.frame_within(Duration::from_secs(5))
            .await
            .expect("a frame or the end within 5 s")
    }

    /// The next frame within `limit`: `Err(())` if none came.
    pub(crate) async fn frame_within(&mut self, limit: Duration) -> Result<Option<Frame>, ()> {
        tokio::time::timeout(limit, async {
            let mut len = [0u8; 4];
            if self.io.read_exact(&mut len).await.is_err() {
                return None;
            }
            let len = u32::from_be_bytes(len) as usize;
            let mut rest = vec![0u8; len];
            self.io.read_exact(&mut rest).await.ok()?;
            Some(Frame {
                ty: rest[0],
                flags: rest[1],
                call: u32::from_be_bytes(rest[2..6].try_into().unwrap()),
                payload: rest[6..].to_vec(),
            })
        })
        .await
        .map_err(|_| ())
    }

    /// Frames until one for `call` (skipping WINDOW and PONG frames).
    pub(crate) async fn on_call(&mut self, call: u32) -> Frame {
        loop {
            let f = self.frame().await.expect("a frame for the call");
            if f.call == call && f.ty != 0x07 {
                return f;
            }
        }
    }

    /// Frames until the GOAWAY: its code and message.
    pub(crate) async fn goaway(&mut self) -> (u16, String) {
        loop {
            match self.frame().await {
                Some(f) if f.ty == 0x0b => return f.goaway(),
                Some(_) => {}
                None => panic!("closed without a GOAWAY"),
            }
        }
    }
}

/// A request head: `method target`, no headers; `end` when no body follows.
pub(crate) fn request(call: u32, method: &str, target: &str, end: bool) -> Vec<u8> {
    request_with(call, method, target, &[], end)
}

/// The code of the first GOAWAY among these frames (a whole peer's output), if any.
pub(crate) fn goaway_code_in(bytes: &[u8]) -> Option<u16> {
    let mut at = 0;
    while at + 10 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if bytes[at + 4] == 0x0b && at + 16 <= bytes.len() {
            return Some(u16::from_be_bytes([bytes[at + 14], bytes[at + 15]]));
        }
        at += 4 + len;
    }
    None
}

/// A REQUEST with headers (`name`, `value` as raw bytes, sent as they are).
pub(crate) fn request_with(
    call: u32,
    method: &str,
    target: &str,
    headers: &[(&[u8], &[u8])],
    end: bool,
) -> Vec<u8> {
    let mut p = vec![method.len() as u8];
    p.extend_from_slice(method.as_bytes());
    p.extend_from_slice(&(target.len() as u16).to_be_bytes());
    p.extend_from_slice(target.as_bytes());
    p.extend_from_slice(&header_block(headers));
    frame(2, u8::from(end), call, &p)
}

/// A header block.
pub(crate) fn header_block(headers: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut p = (headers.len() as u16).to_be_bytes().to_vec();
    for (n, v) in headers {
        p.extend_from_slice(&(n.len() as u16).to_be_bytes());
        p.extend_from_slice(n);
        p.extend_from_slice(&(v.len() as u16).to_be_bytes());
        p.extend_from_slice(v);
    }
    p
}

/// A RESPONSE head.
pub(crate) fn response(call: u32, status: u16, headers: &[(&[u8], &[u8])], end: bool) -> Vec<u8> {
    let mut p = status.to_be_bytes().to_vec();
    p.extend_from_slice(&header_block(headers));
    frame(3, u8::from(end), call, &p)
}

/// A GOAWAY.
pub(crate) fn goaway(code: u16, message: &str) -> Vec<u8> {
    let mut p = 0u32.to_be_bytes().to_vec();
    p.extend_from_slice(&code.to_be_bytes());
    p.extend_from_slice(message.as_bytes());
    frame(0x0b, 0, 0, &p)
}
