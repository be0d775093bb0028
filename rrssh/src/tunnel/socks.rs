//! The server side of a SOCKS5 handshake (RFC 1928), for dynamic forwarding: the method
//! negotiation (no authentication: the listener is the user's own, as `ssh -D`'s), then one
//! `CONNECT` to an IPv4 or IPv6 address or a name. `BIND` and `UDP ASSOCIATE` are refused with
//! "command not supported", as `ssh -D` refuses them.
//!
//! Every length is a byte on the wire, so a request is at most 262 bytes; the whole handshake
//! must arrive within [`HANDSHAKE_TIME`].

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long a client may take to say where it goes.
pub(crate) const HANDSHAKE_TIME: Duration = Duration::from_secs(10);

const VERSION: u8 = 5;
const NO_AUTHENTICATION: u8 = 0x00;
const NO_ACCEPTABLE_METHOD: u8 = 0xff;
const CONNECT: u8 = 1;

/// A reply's code (RFC 1928 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reply {
    Succeeded = 0,
    GeneralFailure = 1,
    NotAllowed = 2,
    ConnectionRefused = 5,
    CommandNotSupported = 7,
    AddressTypeNotSupported = 8,
}

/// Why a handshake failed; the client was told what it could be told.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SocksError {
    #[error("not SOCKS5 (version byte {0})")]
    Version(u8),
    #[error("the client offers no method without authentication")]
    NoMethod,
    #[error("command {0} is not supported (only CONNECT)")]
    Command(u8),
    #[error("address type {0} is not supported")]
    AddressType(u8),
    #[error("the name is not UTF-8, or empty")]
    BadName,
    #[error("the handshake took longer than {HANDSHAKE_TIME:?}")]
    Slow,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads the client's greeting and request, and returns where it wants to go. On an error the
/// client has been answered (no method, or a failed reply) where SOCKS5 says how.
pub(crate) async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
) -> Result<(String, u16), SocksError> {
    match tokio::time::timeout(HANDSHAKE_TIME, negotiate(stream)).await {
        Ok(r) => r,
        Err(_) => Err(SocksError::Slow),
    }
}

async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
) -> Result<(String, u16), SocksError> {
    let [version, methods] = read_array(stream).await?;
    if version != VERSION {
        return Err(SocksError::Version(version));
    }
    let mut offered = [0u8; 255];
    let offered = &mut offered[..usize::from(methods)];
    stream.read_exact(offered).await?;
    if !offered.contains(&NO_AUTHENTICATION) {
        stream.write_all(&[VERSION, NO_ACCEPTABLE_METHOD]).await?;
        return Err(SocksError::NoMethod);
    }
    stream.write_all(&[VERSION, NO_AUTHENTICATION]).await?;
    let [version, command, _reserved, address_type] = read_array(stream).await?;
    if version != VERSION {
        return Err(SocksError::Version(version));
    }
    let host = match address_type {
        1 => Ipv4Addr::from(read_array::<4, _>(stream).await?).to_string(),
        3 => {
            let [len] = read_array(stream).await?;
            let mut name = vec![0u8; usize::from(len)];
            stream.read_exact(&mut name).await?;
            match String::from_utf8(name) {
                Ok(n) if !n.is_empty() => n,
                _ => {
                    reply(stream, Reply::GeneralFailure).await?;
                    return Err(SocksError::BadName);
                }
            }
        }
        4 => Ipv6Addr::from(read_array::<16, _>(stream).await?).to_string(),
        other => {
            reply(stream, Reply::AddressTypeNotSupported).await?;
            return Err(SocksError::AddressType(other));
        }
    };
    let port = u16::from_be_bytes(read_array(stream).await?);
    if command != CONNECT {
        reply(stream, Reply::CommandNotSupported).await?;
        return Err(SocksError::Command(command));
    }
    Ok((host, port))
}

/// Answers the request: `Succeeded` before the bytes flow, or why not. The bound address is
/// not told (all zeros), as `ssh -D` does not know it either.
pub(crate) async fn reply<S: AsyncWrite + Unpin>(
    stream: &mut S,
    code: Reply,
) -> std::io::Result<()> {
    stream
        .write_all(&[VERSION, code as u8, 0, 1, 0, 0, 0, 0, 0, 0])
        .await?;
    stream.flush().await
}

async fn read_array<const N: usize, S: AsyncRead + Unpin>(
    stream: &mut S,
) -> std::io::Result<[u8; N]> {
    let mut buf = [0u8; N];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `accept` against what a client sends; returns its result and what it answered.
    async fn run(sent: &[u8]) -> (Result<(String, u16), SocksError>, Vec<u8>) {
        let (mut client, mut server) = tokio::io::duplex(1024);
        client.write_all(sent).await.unwrap();
        client.shutdown().await.unwrap();
        let r = accept(&mut server).await;
        drop(server);
        let mut answered = Vec::new();
        client.read_to_end(&mut answered).await.unwrap();
        (r, answered)
    }

    #[tokio::test]
    async fn connect_by_name_ipv4_and_ipv6() {
        let (r, answered) = run(b"\x05\x01\x00\x05\x01\x00\x03\x09localhost\x1f\x90").await;
        assert_eq!(r.unwrap(), ("localhost".to_owned(), 8080));
        assert_eq!(answered, [5, 0]);
        let (r, _) = run(b"\x05\x02\x02\x00\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x16").await;
        assert_eq!(r.unwrap(), ("127.0.0.1".to_owned(), 22));
        let mut v6 = b"\x05\x01\x00\x05\x01\x00\x04".to_vec();
        v6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        v6.extend_from_slice(&443u16.to_be_bytes());
        assert_eq!(run(&v6).await.0.unwrap(), ("::1".to_owned(), 443));
    }

    #[tokio::test]
    async fn what_is_not_supported_is_refused_as_socks5_says() {
        // Only username/password offered: no acceptable method.
        let (r, answered) = run(b"\x05\x01\x02").await;
        assert!(matches!(r, Err(SocksError::NoMethod)));
        assert_eq!(answered, [5, 0xff]);
        // UDP ASSOCIATE: command not supported.
        let (r, answered) = run(b"\x05\x01\x00\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00").await;
        assert!(matches!(r, Err(SocksError::Command(3))));
        assert_eq!(answered[2..4], [5, 7]);
        // An unknown address type.
        let (r, answered) = run(b"\x05\x01\x00\x05\x01\x00\x09").await;
        assert!(matches!(r, Err(SocksError::AddressType(9))));
        assert_eq!(answered[2..4], [5, 8]);
        // SOCKS4, and an empty name.
        assert!(matches!(
            run(b"\x04\x01\x00\x50").await.0,
            Err(SocksError::Version(4))
        ));
        let (r, _) = run(b"\x05\x01\x00\x05\x01\x00\x03\x00\x00\x50").await;
        assert!(matches!(r, Err(SocksError::BadName)));
        // A request cut short.
        assert!(matches!(
            run(b"\x05\x01\x00\x05\x01").await.0,
            Err(SocksError::Io(_))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_says_nothing_is_let_go() {
        let (_client, mut server) = tokio::io::duplex(64);
        assert!(matches!(accept(&mut server).await, Err(SocksError::Slow)));
    }
}
