//! An HTTP proxy's tunnel: `CONNECT host:port`, with Basic authentication, and the head of its
//! answer read with a bound (the bytes after it are the target's and stay in the stream).

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest answer head an HTTP proxy may send to `CONNECT`.
pub const MAX_HEAD: usize = 8 * 1024;

/// The most header lines of that head.
const MAX_HEADERS: usize = 64;

fn authority(host: &str, port: u16) -> Result<String, String> {
    if host.is_empty()
        || host
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(format!("`{host}` is not a host name"));
    }
    Ok(if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

pub(super) async fn open(
    mut tcp: TcpStream,
    host: &str,
    port: u16,
    auth: Option<&(String, String)>,
) -> Result<TcpStream, String> {
    let target = authority(host, port)?;
    let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some((user, password)) = auth {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        req.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    req.push_str("\r\n");
    tcp.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("sending CONNECT: {e}"))?;
    // One byte at a time: what follows the head belongs to the target (its SSH banner may
    // come in the same segment), so nothing past the head may be read here.
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return Err(format!("its answer's head is longer than {MAX_HEAD} bytes"));
        }
        match tcp.read(&mut byte).await {
            Ok(0) => return Err("it closed the connection before answering".to_owned()),
            Ok(_) => head.push(byte[0]),
            Err(e) => return Err(format!("reading its answer: {e}")),
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut answer = httparse::Response::new(&mut headers);
    match answer.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) | Err(_) => {
            return Err("its answer is not HTTP".to_owned());
        }
    }
    match answer.code {
        Some(code) if (200..300).contains(&code) => Ok(tcp),
        Some(code) => Err(format!("{code} {}", answer.reason.unwrap_or(""))
            .trim()
            .to_owned()),
        None => Err("its answer has no status".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;

    /// A proxy that reads the CONNECT head, answers `answer`, and returns what it was asked.
    async fn proxy_answering(
        answer: &'static [u8],
    ) -> (std::net::SocketAddr, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut asked = Vec::new();
            let mut b = [0u8; 1];
            while !asked.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut b).await.unwrap();
                asked.push(b[0]);
            }
            s.write_all(answer).await.unwrap();
            let _ = s.shutdown().await;
            String::from_utf8(asked).unwrap()
        });
        (addr, task)
    }

    #[tokio::test]
    async fn the_bytes_after_the_head_stay_for_the_target() {
        let (addr, asked) =
            proxy_answering(b"HTTP/1.1 200 Connection established\r\n\r\nSSH-2.0-x\r\n").await;
        let auth = ("ada".to_owned(), "pw".to_owned());
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tunnel = open(tcp, "example.org", 22, Some(&auth)).await.unwrap();
        let mut rest = String::new();
        tunnel.read_to_string(&mut rest).await.unwrap();
        assert_eq!(rest, "SSH-2.0-x\r\n");
        let asked = asked.await.unwrap();
        assert!(asked.starts_with("CONNECT example.org:22 HTTP/1.1\r\nHost: example.org:22\r\n"));
        assert!(
            asked.contains("Proxy-Authorization: Basic YWRhOnB3\r\n"),
            "{asked}"
        );
    }

    #[tokio::test]
    async fn a_refusal_names_the_status() {
        let (addr, _) = proxy_answering(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n",
        )
        .await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let e = open(tcp, "example.org", 22, None).await.unwrap_err();
        assert_eq!(e, "407 Proxy Authentication Required");
    }

    #[tokio::test]
    async fn an_endless_or_foreign_answer_is_refused() {
        static ENDLESS: [u8; MAX_HEAD + 10] = [b'a'; MAX_HEAD + 10];
        let (addr, _) = proxy_answering(&ENDLESS).await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let e = open(tcp, "example.org", 22, None).await.unwrap_err();
        assert!(e.contains("longer than"), "{e}");
        let (addr, _) = proxy_answering(b"SSH-2.0-OpenSSH\r\n\r\n").await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        assert_eq!(
            open(tcp, "h", 22, None).await.unwrap_err(),
            "its answer is not HTTP"
        );
        let (addr, _) = proxy_answering(b"HTTP/1.1 200 OK\r\n").await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let e = open(tcp, "h", 22, None).await.unwrap_err();
        assert!(e.contains("closed"), "{e}");
    }

    #[test]
    fn a_host_cannot_smuggle_header_lines() {
        assert!(authority("evil\r\nX-Injected: 1", 22).is_err());
        assert!(authority("a b", 22).is_err());
        assert_eq!(authority("::1", 22).unwrap(), "[::1]:22");
        assert_eq!(authority("[::1]", 22).unwrap(), "[::1]:22");
    }
}
