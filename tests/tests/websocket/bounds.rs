//! What a hostile peer of the web listener can make it hold: connections over its limit are
//! answered 503 and every slot comes back; a WebSocket that never logs in is cut at the auth
//! timeout; a text message ends the connection.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rrssh::websocket::{PATH, WebListener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use super::{client_at, hello, says_hello};
use crate::ssh::{Keys, eventually, server_builder};

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// A hub serving `hello`, and a web listener on it set up by `listener`; returns the hub and
/// the listener's address.
async fn web_listener(
    keys: &Keys,
    listener: impl FnOnce(WebListener) -> WebListener,
) -> (rrssh::Hub, std::net::SocketAddr) {
    let hub = server_builder(keys)
        .router(hello())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let web = listener(WebListener::bind("127.0.0.1:0").await.unwrap())
        .serve(&hub)
        .unwrap();
    (hub, web)
}

/// What the listener answers on `tcp` until it closes, once it has `request` (5 s at most).
async fn answer_to(tcp: &mut tokio::net::TcpStream, request: &[u8]) -> String {
    tcp.write_all(request).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_string(&mut answer))
        .await
        .expect("the answer comes at once")
        .unwrap();
    answer
}

const GET_NOTHING: &[u8] = b"GET /nothing HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";

#[tokio::test]
async fn the_web_listener_holds_its_connection_limit_and_frees_every_slot() {
    let keys = Keys::new();
    let (_hub, web) = web_listener(&keys, |l| l.max_connections(8)).await;
    let before = open_descriptors();
    // Eight connections that send nothing hold every slot…
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(tokio::net::TcpStream::connect(web).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // …so the ninth is answered 503 and closed.
    let mut ninth = tokio::net::TcpStream::connect(web).await.unwrap();
    let answer = answer_to(&mut ninth, b"").await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("limit of 8 web connections"), "{answer}");
    drop(ninth);
    // Closed, they give their slots back: a client gets in over ws://, and nothing is left
    // open once it is gone.
    drop(idle);
    let url = format!("ws://127.0.0.1:{}", web.port());
    let c = client_at(&keys, &url)
        .connect()
        .await
        .expect("a slot is free again");
    says_hello(&c).await;
    c.close().await;
    drop(c);
    assert!(
        eventually(Duration::from_secs(5), || open_descriptors() <= before).await,
        "descriptors: {before} before, {} after",
        open_descriptors()
    );
}

#[tokio::test]
async fn a_websocket_that_never_logs_in_is_cut_at_the_auth_timeout() {
    let keys = Keys::new();
    let hub = server_builder(&keys)
        .auth_timeout(Duration::from_millis(500))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let web = WebListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .serve(&hub)
        .unwrap();
    let url = format!("ws://127.0.0.1:{}{PATH}", web.port());
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    // The server speaks first (its SSH version line), then hears nothing and hangs up.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the silent WebSocket is cut");
}

#[tokio::test]
async fn a_text_message_ends_the_connection() {
    let keys = Keys::new();
    let hub = server_builder(&keys).bind("127.0.0.1:0").await.unwrap();
    let web = WebListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .serve(&hub)
        .unwrap();
    let url = format!("ws://127.0.0.1:{}{PATH}", web.port());
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    ws.send(Message::Text("SSH-2.0-text\r\n".into()))
        .await
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "a text message ends it");
    // Plain HTTP that is no upgrade, to a port without other routes: 404, and the listener
    // goes on.
    let mut tcp = tokio::net::TcpStream::connect(web).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
}

#[tokio::test]
async fn one_address_holds_its_share_of_the_web_listener_and_others_still_get_in() {
    let keys = Keys::new();
    let (_hub, web) = web_listener(&keys, |l| {
        l.max_connections(64).max_connections_per_source(4)
    })
    .await;
    let from = |last: u8| {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(std::net::SocketAddr::from(([127, 0, 0, last], 0)))
            .unwrap();
        socket.connect(web)
    };
    // Four silent connections from 127.0.0.2 hold its share…
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(from(2).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // …so its fifth is refused, naming the address's limit…
    let mut fifth = from(2).await.unwrap();
    let answer = answer_to(&mut fifth, b"").await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains("your address holds its limit of 4"),
        "{answer}"
    );
    // …while another address gets a WebSocket and logs in.
    let mut other = from(3).await.unwrap();
    let got = answer_to(&mut other, GET_NOTHING).await;
    assert!(got.starts_with("HTTP/1.1 404"), "{got}");
    let c = client_at(&keys, &format!("ws://127.0.0.1:{}", web.port()))
        .connect()
        .await
        .expect("another address gets in");
    says_hello(&c).await;
    c.close().await;
    // Its slots come back when it lets go.
    drop(idle);
    drop(fifth);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = from(2).await.unwrap();
    let got = answer_to(&mut again, GET_NOTHING).await;
    assert!(got.starts_with("HTTP/1.1 404"), "{got}");
}
