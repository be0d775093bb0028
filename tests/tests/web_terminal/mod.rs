//! The terminal in the browser: a WebSocket client and a real Chromium drive a shell on an rrssh
//! server through `WebTerminal`.

mod browser;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use rrssh::terminal::TerminalOptions;
use rrssh::terminal::web::WebTerminal;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::ssh::terminal::terminal_server;
use crate::ssh::{Keys, client, eventually};

/// A server that serves `/bin/sh` terminals, and a web terminal for it on 127.0.0.1.
async fn start(options: TerminalOptions) -> (SocketAddr, WebTerminal, rrssh::Hub, Keys) {
    let keys = Keys::new();
    let server = terminal_server(&keys).await;
    let c = client(&keys, &server).connect().await.unwrap();
    let web = WebTerminal::new(c).options(options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, web.clone().into_router()).into_future());
    (addr, web, server, keys)
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open_socket(
    addr: SocketAddr,
    query: &str,
    origin: Option<&str>,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://{addr}/socket?{query}")
        .into_client_request()
        .unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    tokio_tungstenite::connect_async(req).await.map(|(s, _)| s)
}

/// Reads the socket until the terminal output contains `needle`; returns the output and the
/// control messages seen.
async fn read_until(ws: &mut Socket, needle: &str) -> (String, Vec<Value>) {
    let mut out = String::new();
    let mut control = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while !out.contains(needle) {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => out.push_str(&String::from_utf8_lossy(&b)),
                Some(Ok(Message::Text(t))) => control.push(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    (out, control)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_types_into_a_shell_resizes_it_and_gets_the_exit_status() {
    let (addr, web, _server, _keys) = start(TerminalOptions::new()).await;
    let token = web.access_token();
    assert_eq!(token.len(), 32, "128 random bits in hex");
    let mut ws = open_socket(addr, &format!("token={token}&cols=90&rows=20"), None)
        .await
        .unwrap();
    ws.send(Message::Binary("stty size\n".into()))
        .await
        .unwrap();
    let (out, _) = read_until(&mut ws, "20 90").await;
    assert!(out.contains("20 90"), "the size from the query: {out:?}");

    ws.send(Message::Text(
        r#"{"type":"resize","cols":120,"rows":40}"#.into(),
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    ws.send(Message::Binary("stty size\n".into()))
        .await
        .unwrap();
    let (out, _) = read_until(&mut ws, "40 120").await;
    assert!(out.contains("40 120"), "the size after a resize: {out:?}");

    ws.send(Message::Binary("exit 7\n".into())).await.unwrap();
    let (_, control) = read_until(&mut ws, "\u{0}never").await;
    assert_eq!(
        control,
        vec![serde_json::json!({"type": "exit", "status": 7})],
        "the exit status, then the close"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_the_socket_need_the_token_and_the_same_origin() {
    let (addr, web, _server, _keys) = start(TerminalOptions::new()).await;
    let token = web.access_token().to_owned();
    let get = |path: String| async move {
        let out = tokio::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("http://{addr}{path}"))
            .output()
            .await;
        match out {
            Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
            Err(_) => http_status(addr, &path).await,
        }
    };
    assert_eq!(get("/".to_owned()).await, "401", "no token");
    assert_eq!(get("/?token=0123".to_owned()).await, "401", "a wrong token");
    assert_eq!(get(format!("/?token={token}")).await, "200");
    assert_eq!(
        get("/xterm.mjs".to_owned()).await,
        "200",
        "assets are public"
    );

    let err = open_socket(addr, "token=nope", None).await.unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    let err = open_socket(addr, &format!("token={token}"), Some("http://evil.example"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    let same = format!("http://{addr}");
    assert!(
        open_socket(addr, &format!("token={token}"), Some(&same))
            .await
            .is_ok()
    );
}

/// Before: the Origin check compared Origin with Host, which a DNS-rebinding page (served as
/// `evil.example`, its name pointed at 127.0.0.1) passes; only the token stood in its way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dns_rebinding_page_is_refused_by_its_host() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (addr, web, _server, _keys) = start(TerminalOptions::new()).await;
    let token = web.access_token().to_owned();
    let status = |host: String, path: String, origin: Option<String>| async move {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let origin = origin
            .map(|o| format!("Origin: {o}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\n{origin}Connection: upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut buf = [0u8; 12];
        tcp.read_exact(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[9..12]).into_owned()
    };
    let evil = format!("evil.example:{}", addr.port());
    // The socket, with an Origin that matches the rebound Host: refused.
    let got = status(
        evil.clone(),
        format!("/socket?token={token}"),
        Some(format!("http://{evil}")),
    )
    .await;
    assert_eq!(got, "421");
    // The page too.
    assert_eq!(status(evil, format!("/?token={token}"), None).await, "421");
    // Loopback names and addresses are answered.
    for host in [format!("localhost:{}", addr.port()), addr.to_string()] {
        let got = status(
            host.clone(),
            format!("/socket?token={token}"),
            Some(format!("http://{host}")),
        )
        .await;
        assert_eq!(got, "101", "{host}");
    }
}

/// The status of a GET, over a plain TCP connection (when curl is not installed).
async fn http_status(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    tcp.read_to_end(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[9..12]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_page_hangs_up_the_program() {
    let (mut ws, pid, _held) = program_in_a_page("exec sleep 300").await;
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    ws.close(None).await.unwrap();
    drop(ws);
    let started = std::time::Instant::now();
    assert!(
        eventually(Duration::from_secs(10), || !is_running(pid)).await,
        "the program must end when the page closes"
    );
    println!(
        "the program ended {:?} after the page closed",
        started.elapsed()
    );
}

/// Before: the relay waited on sending output to a page that read none, so it never saw the
/// page's close, and the program ran on (141 s and counting).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_stops_reading_and_closes_hangs_up_the_program() {
    let (mut ws, pid, _held) = program_in_a_page("exec yes flooding-output").await;
    // Read nothing until every buffer on the way is full, then close, keeping the socket.
    tokio::time::sleep(Duration::from_secs(1)).await;
    ws.send(Message::Close(None)).await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), || !is_running(pid)).await,
        "the program must end when a page that stopped reading closes"
    );
    drop(ws);
}

/// A page running `command` after writing its shell's pid: the socket, the pid, and what keeps
/// the server up.
async fn program_in_a_page(command: &str) -> (Socket, u32, (WebTerminal, rrssh::Hub, Keys)) {
    let dir = tempdir();
    let pid_file = dir.join("pid");
    let (addr, web, server, keys) = start(
        TerminalOptions::new().command(format!("echo $$ > {}; {command}", pid_file.display())),
    )
    .await;
    let ws = open_socket(addr, &format!("token={}", web.access_token()), None)
        .await
        .unwrap();
    let read_pid = || {
        std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
    };
    assert!(eventually(Duration::from_secs(10), || read_pid().is_some()).await);
    (ws, read_pid().unwrap(), (web, server, keys))
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rrssh-web-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
