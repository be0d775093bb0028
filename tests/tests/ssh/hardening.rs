//! Smaller holes, each shut: compression before authentication, privileged remote-tunnel
//! ports, scoped routes in the listing, the relay's path and caller headers.

use std::sync::Arc;
use std::time::Duration;

use rrssh::client::CallExt;
use rrssh::keys::{AuthorizedKeys, HostKeyPolicy, PrivateKey, generate_ed25519};
use rrssh::routing::get;
use rrssh::{Client, Router, routes};

use super::limits::AnyHost;
use super::{Keys, eventually, server, server_builder};

/// Before: plain `zlib` was offered, so an unauthenticated peer's data was inflated. Now only
/// `zlib@openssh.com`, which starts after authentication.
#[tokio::test]
async fn compression_starts_only_after_authentication() {
    let keys = Keys::new();
    let hub = server(&keys, None).await;
    let with = |names: Vec<russh::compression::Name>| {
        let mut config = russh::client::Config::default();
        config.preferred.compression = names.into();
        russh::client::connect(Arc::new(config), hub.local_addr(), AnyHost)
    };
    assert!(
        with(vec![russh::compression::ZLIB]).await.is_err(),
        "plain zlib must not be agreed"
    );
    let mut ssh = with(vec![russh::compression::ZLIB_LEGACY]).await.unwrap();
    let auth = ssh
        .authenticate_publickey(
            "ada",
            russh::keys::PrivateKeyWithHashAlg::new(Arc::new(keys.client.clone()), None),
        )
        .await
        .unwrap();
    assert!(auth.success());
}

/// Before: a `tcpip-forward` to port 81 was accepted when the server ran as root.
#[tokio::test]
async fn remote_tunnels_never_listen_on_privileged_ports() {
    let keys = Keys::new();
    let hub = server_builder(&keys)
        .permit_listen(rrssh::tunnel::PermitOpen::any())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let c = super::client(&keys, &hub).connect().await.unwrap();
    for port in [81, 443, 1023] {
        let err = c
            .forward_remote("127.0.0.1", port, "127.0.0.1", 9)
            .await
            .unwrap_err();
        println!("{port}: {err}");
    }
    let ok = c
        .forward_remote("127.0.0.1", 0, "127.0.0.1", 9)
        .await
        .unwrap();
    assert!(ok.port() >= 1024);
}

/// Reads the invoices.
#[rrssh::get("/invoices", scope = "billing:read")]
async fn invoices() -> &'static str {
    "[]"
}

/// Refunds.
#[rrssh::post("/refund", scope = "billing:write")]
async fn refund() -> &'static str {
    "ok"
}

/// Before: the route listing showed scoped routes to keys without the scope.
#[tokio::test]
async fn the_route_listing_shows_a_scoped_route_only_to_keys_with_the_scope() {
    let (host, reader, nobody) = (
        generate_ed25519("host"),
        generate_ed25519("reader"),
        generate_ed25519("nobody"),
    );
    let text = format!(
        "rrssh-users=\"ada\",rrssh-scopes=\"billing:read\" {}\nrrssh-users=\"ada\" {}\n",
        reader.public_key().to_openssh().unwrap(),
        nobody.public_key().to_openssh().unwrap()
    );
    let hub = rrssh::Server::new()
        .host_key(host.clone())
        .authorized_keys(AuthorizedKeys::parse(&text, "ak").unwrap())
        .router(Router::new().mount(routes![invoices, refund]))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let list = |key: PrivateKey| {
        let host = host.clone();
        let addr = hub.local_addr();
        async move {
            let c = Client::builder(addr.to_string())
                .user("ada")
                .identity(key)
                .host_keys(HostKeyPolicy::Pinned(host.public_key().clone()))
                .connect()
                .await
                .unwrap();
            let routes: Vec<rrssh::routing::introspect::RouteSummary> = c
                .get(rrssh::routing::introspect::ROUTES_PATH)
                .receive()
                .await
                .unwrap();
            routes.into_iter().map(|r| r.path).collect::<Vec<_>>()
        }
    };
    assert_eq!(list(reader).await, ["/invoices"]);
    assert!(list(nobody).await.is_empty());
}

/// Before: the relay decoded `%2F` and `%3F` in the forwarded path (`a%2Fb` reached the peer as
/// `a/b`), and a caller's own `rrssh-caller-*` headers could pass.
#[tokio::test]
async fn the_relay_forwards_the_path_as_sent_and_only_its_own_caller_headers() {
    let (host, svc, caller) = (
        generate_ed25519("host"),
        generate_ed25519("svc"),
        generate_ed25519("caller"),
    );
    let text = format!(
        "rrssh-users=\"svc\",rrssh-services=\"files\" {}\nrrssh-users=\"ada\",rrssh-scopes=\"call:files\" {}\n",
        svc.public_key().to_openssh().unwrap(),
        caller.public_key().to_openssh().unwrap()
    );
    let hub = rrssh::Server::new()
        .host_key(host.clone())
        .authorized_keys(AuthorizedKeys::parse(&text, "ak").unwrap())
        .relay(true)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let dial = |user: &str, key: &PrivateKey| {
        Client::builder(hub.local_addr().to_string())
            .user(user)
            .identity(key.clone())
            .host_keys(HostKeyPolicy::Pinned(host.public_key().clone()))
    };
    let echo = Router::new().route(
        "/{*rest}",
        get(|req: rrssh::Request| async move {
            let mut seen: Vec<String> = req
                .headers()
                .iter()
                .filter(|(k, _)| k.as_str().starts_with("rrssh-caller-"))
                .map(|(k, v)| format!("{k}={}", v.to_str().unwrap_or("?")))
                .collect();
            seen.sort();
            format!("{} {}", req.uri(), seen.join(" "))
        }),
    );
    let _svc = dial("svc", &svc)
        .serve(echo)
        .service_name("files")
        .connect()
        .await
        .unwrap();
    assert!(eventually(Duration::from_secs(5), || hub.peer("files").is_connected()).await);
    let c = dial("ada", &caller).connect().await.unwrap();
    let base = rrssh::hub::relay::PEERS_PATH;
    let got = c
        .get(&format!("{base}/files/dir/a%2Fb%3Fc?q=1"))
        .header(
            http::HeaderName::from_static("rrssh-caller-fingerprint"),
            http::HeaderValue::from_static("SHA256:forged"),
        )
        .header(
            http::HeaderName::from_static("rrssh-caller-groups"),
            http::HeaderValue::from_static("admin"),
        )
        .receive_text()
        .await
        .unwrap();
    println!("{got}");
    let fp = rrssh::keys::fingerprint(caller.public_key());
    assert_eq!(
        got,
        format!("/dir/a%2Fb%3Fc?q=1 rrssh-caller-fingerprint={fp} rrssh-caller-user=ada")
    );
}

/// Before: when the rrssh connection on a session channel ended (the client said GOAWAY and
/// ended its input, broke the protocol, or sent a HELLO refused), the channel's slot stayed
/// taken: the SSH layer does not report the client's CLOSE once the server closed, so a
/// connection at `max_sessions` could open no other channel. Now the server ends the channel
/// (EOF, CLOSE) and frees its slot at once. (A GOAWAY alone ends nothing: its sender may still
/// make calls.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_channel_is_closed_and_freed_when_its_rrssh_connection_ends() {
    use crate::wire::raw;
    use russh::ChannelMsg;
    let keys = Keys::new();
    let hub = server_builder(&keys)
        .max_sessions(1)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let ssh = super::limits::russh_login(hub.local_addr(), "ada", &keys.client).await;
    let hello = raw::frame(1, 0, 0, raw::HELLO.as_bytes());
    let other_version = raw::frame(
        1,
        0,
        0,
        &raw::HELLO
            .replace(r#""version":1"#, r#""version":2"#)
            .into_bytes(),
    );
    let cases = [
        // A graceful end from the client: GOAWAY, then the end of its input (no CLOSE).
        (
            "a GOAWAY and the end of input",
            [hello.clone(), raw::goaway(0, "done")].concat(),
            true,
            None,
        ),
        // A frame of a type the receiver does not know, without SKIP: a violation (code 1).
        (
            "a protocol violation",
            [hello.clone(), raw::frame(0x42, 0, 0, b"")].concat(),
            false,
            Some(1),
        ),
        ("a HELLO of another version", other_version, false, Some(3)),
    ];
    for (case, bytes, eof_after, code) in cases {
        let mut ch = ssh
            .channel_open_session()
            .await
            .unwrap_or_else(|e| panic!("{case}: the one slot must be free: {e}"));
        ch.request_subsystem(true, "rrssh").await.unwrap();
        ch.data(&bytes[..]).await.unwrap();
        if eof_after {
            ch.eof().await.unwrap();
        }
        // The channel is never closed from this side.
        let (mut out, mut eof, mut closed) = (Vec::new(), false, false);
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(msg) = ch.wait().await {
                match msg {
                    ChannelMsg::Data { data } => out.extend_from_slice(&data),
                    ChannelMsg::Eof => eof = true,
                    ChannelMsg::Close => {
                        closed = true;
                        break;
                    }
                    _ => {}
                }
            }
        })
        .await;
        assert!(eof && closed, "{case}: the server ends the channel");
        if let Some(code) = code {
            assert_eq!(
                raw::goaway_code_in(&out),
                Some(code),
                "{case}: the GOAWAY that says why comes before the CLOSE"
            );
        }
    }
    // Its slot is free too.
    assert!(
        ssh.channel_open_session().await.is_ok(),
        "the slot of the last channel must be free"
    );
}
