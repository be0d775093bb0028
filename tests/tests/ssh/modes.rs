//! Every verb and extractor in forward and reverse mode; identity; both ends calling.

use std::time::Duration;

use futures_util::StreamExt;
use rrssh::client::{Call, CallExt, Error};
use rrssh::keys::{HostKeyPolicy, generate_ed25519};
use rrssh::routing::get;
use rrssh::transport::ConnectError;
use rrssh::{Bytes, Client, Peer, Router, StatusCode};

use super::{Keys, client, eventually, server};
use crate::core::typed::{self, NewUser, Page, User};

async fn exercise(c: &impl Call) {
    assert_eq!(
        typed::get_user::call(c, 1).await.unwrap(),
        User {
            id: 1,
            name: "root".into()
        }
    );
    let made = typed::create_user::call(c, NewUser { name: "bob".into() })
        .await
        .unwrap();
    assert_eq!(made.id, 2);
    let renamed = typed::rename_user::call(
        c,
        2,
        NewUser {
            name: "robert".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(renamed.name, "robert");
    typed::put_user::call(
        c,
        5,
        User {
            id: 0,
            name: "five".into(),
        },
    )
    .await
    .unwrap();
    let listed = typed::list_users::call(
        c,
        Page {
            offset: 1,
            names: vec!["robert".into(), "five".into()],
        },
    )
    .await
    .unwrap();
    assert_eq!(listed.iter().map(|u| u.id).collect::<Vec<_>>(), [2, 5]);
    typed::delete_user::call(c, 5).await.unwrap();
    assert_eq!(
        typed::delete_user::call(c, 5).await.unwrap_err().status(),
        Some(StatusCode::NOT_FOUND)
    );
    assert_eq!(
        typed::repo::call(c, "a b".into(), "c/d".into())
            .await
            .unwrap(),
        "a b/c/d"
    );
    let items: Vec<u32> = typed::count::call(c, 1000)
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(items, (0..1000).collect::<Vec<_>>());
    let failed: Vec<_> = typed::fail_midway::call(c).await.unwrap().collect().await;
    assert!(
        matches!(failed.last(), Some(Err(Error::Status { status, .. })) if *status == StatusCode::SERVICE_UNAVAILABLE)
    );
    // 404, 405, 422 over the wire, with the error JSON.
    let e: Error = c
        .get("/nope")
        .receive::<serde_json::Value>()
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(StatusCode::NOT_FOUND));
    let r = c.delete("/users").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.headers().contains_key("allow"));
    let e = c
        .post("/users")
        .json(&serde_json::json!({"name": 5}))
        .receive::<User>()
        .await
        .unwrap_err();
    match e {
        Error::Status { status, body } => {
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
            assert!(body.message.contains("invalid type"), "{body:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn forward_mode_every_verb() {
    let keys = Keys::new();
    let hub = server(&keys, Some(typed::router())).await;
    let c = client(&keys, &hub).connect().await.unwrap();
    exercise(&c).await;
}

#[tokio::test]
async fn reverse_mode_every_verb_through_the_hub() {
    let keys = Keys::new();
    let hub = server(&keys, None).await;
    let mut events = hub.events();
    let _service = client(&keys, &hub)
        .serve(typed::router())
        .service_name("users")
        .connect()
        .await
        .unwrap();
    match tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap()
    {
        rrssh::hub::HubEvent::Connected { name, peer } => {
            assert_eq!(name.as_deref(), Some("users"));
            assert_eq!(peer.user(), "ada");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(hub.peers().len(), 1);
    exercise(&hub.peer("users")).await;
    let missing = hub.peer("nobody").get("/users/1").send().await.unwrap_err();
    assert!(matches!(missing, Error::Unavailable(_)), "{missing:?}");
}

#[tokio::test]
async fn peer_identity_reaches_handlers_and_both_ends_call() {
    let keys = Keys::new();
    let who = |peer: Peer| async move {
        format!(
            "{} {} {}",
            peer.user(),
            peer.fingerprint(),
            peer.comment().unwrap_or("")
        )
    };
    let hub_router: Router = Router::new().route("/whoami", get(who));
    let hub = server(&keys, Some(hub_router)).await;
    let service_router: Router =
        Router::new().route("/ping", get(|| async { "pong from the service" }));
    let svc = client(&keys, &hub)
        .serve(service_router)
        .service_name("svc")
        .connect()
        .await
        .unwrap();

    // The service calls the hub, and the hub calls the service, on one connection.
    let me = svc.get("/whoami").receive_text().await.unwrap();
    let fp = rrssh::keys::fingerprint(keys.client.public_key());
    assert_eq!(me, format!("ada {fp} ada@test"));
    assert!(eventually(Duration::from_secs(5), || hub.peer("svc").is_connected()).await);
    assert_eq!(
        hub.peer("svc").get("/ping").receive_text().await.unwrap(),
        "pong from the service"
    );
}

#[tokio::test]
async fn burst_of_64_concurrent_calls_each_gets_its_own_answer() {
    let keys = Keys::new();
    let echo = |rrssh::Path(n): rrssh::Path<u64>| async move {
        tokio::time::sleep(Duration::from_millis(n % 5)).await;
        n.to_string()
    };
    let hub = server(&keys, Some(Router::new().route("/n/{n}", get(echo)))).await;
    let c = client(&keys, &hub).connect().await.unwrap();
    let calls = (0..64u64).map(|i| {
        let c = c.clone();
        async move { (i, c.get(&format!("/n/{i}")).receive_text().await.unwrap()) }
    });
    for (i, got) in futures_util::future::join_all(calls).await {
        assert_eq!(got, i.to_string());
    }
}

#[tokio::test]
async fn stream_of_100000_items() {
    let keys = Keys::new();
    let hub = server(&keys, Some(typed::router())).await;
    let c = client(&keys, &hub).connect().await.unwrap();
    let mut items = typed::count::call(&c, 100_000).await.unwrap();
    let mut n = 0u32;
    while let Some(i) = items.next().await {
        assert_eq!(i.unwrap(), n);
        n += 1;
    }
    assert_eq!(n, 100_000);
}

#[tokio::test]
async fn fifty_mib_body_round_trip_in_chunks() {
    let keys = Keys::new();
    let echo = |b: Bytes| async move { b };
    let router: Router = Router::new()
        .route("/echo", rrssh::routing::post(echo))
        .body_limit(64 << 20);
    let hub = server(&keys, Some(router)).await;
    let c = client(&keys, &hub).connect().await.unwrap();
    let body: Vec<u8> = (0..50u32 << 20).map(|i| (i % 251) as u8).collect();
    let res = c.post("/echo").body(body.clone()).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let back = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(back.len(), body.len());
    assert!(back[..] == body[..]);
}

#[tokio::test]
async fn unknown_client_key_is_refused() {
    let keys = Keys::new();
    let hub = server(&keys, Some(typed::router())).await;
    let stranger = generate_ed25519("eve");
    match client(&keys, &hub).identity(stranger).connect().await {
        Err(ConnectError::AuthRejected { user, .. }) => assert_eq!(user, "ada"),
        other => panic!("expected AuthRejected, got {other:?}"),
    }
}

#[tokio::test]
async fn changed_host_key_is_refused_and_accept_new_records_keys() {
    let keys = Keys::new();
    let hub = server(&keys, Some(typed::router())).await;
    let dir = std::env::temp_dir().join(format!("rrssh-kh-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let known = dir.join("known_hosts");
    let addr = hub.local_addr().to_string();
    let connect = |policy| {
        Client::builder(addr.clone())
            .user("ada")
            .identity(keys.client.clone())
            .host_keys(policy)
            .connect()
    };

    // Strict with an empty file: unknown host.
    match connect(HostKeyPolicy::Strict(known.clone())).await {
        Err(ConnectError::HostKey(e)) => assert!(e.to_string().contains("is not known"), "{e}"),
        other => panic!("{other:?}"),
    }
    // accept-new records it; strict then accepts.
    connect(HostKeyPolicy::AcceptNew(known.clone()))
        .await
        .unwrap();
    assert!(
        std::fs::read_to_string(&known)
            .unwrap()
            .contains(&format!("[127.0.0.1]:{}", hub.local_addr().port()))
    );
    connect(HostKeyPolicy::Strict(known.clone())).await.unwrap();

    // Another server on the same port with a different host key: refused, even with accept-new.
    let port = hub.local_addr().port();
    drop(hub);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let other = rrssh::Server::new()
        .open_registration(true)
        .host_key(generate_ed25519("impostor"))
        .authorized_keys(
            rrssh::keys::AuthorizedKeys::from_keys([keys.client.public_key().clone()])
                .owned_by("ada"),
        )
        .bind(("127.0.0.1", port))
        .await
        .unwrap();
    match connect(HostKeyPolicy::AcceptNew(known.clone())).await {
        Err(ConnectError::HostKey(e)) => {
            let msg = e.to_string();
            assert!(msg.contains("changed: expected SHA256:"), "{msg}");
            assert!(
                msg.contains("remove the old line") && msg.contains("known_hosts"),
                "{msg}"
            );
        }
        other => panic!("{other:?}"),
    }
    drop(other);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn same_name_newest_wins_other_key_refused() {
    let keys = Keys::new();
    let mut hub_keys =
        rrssh::keys::AuthorizedKeys::from_keys([keys.client.public_key().clone()]).owned_by("ada");
    let eve = generate_ed25519("eve");
    for k in rrssh::keys::AuthorizedKeys::from_keys([eve.public_key().clone()])
        .owned_by("ada")
        .iter()
    {
        hub_keys.push(k.clone());
    }
    let hub = rrssh::Server::new()
        .open_registration(true)
        .host_key(keys.host.clone())
        .authorized_keys(hub_keys)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let first: Router = Router::new().route("/v", get(|| async { "first" }));
    let second: Router = Router::new().route("/v", get(|| async { "second" }));
    let a = client(&keys, &hub)
        .serve(first)
        .service_name("billing")
        .connect()
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || hub
            .peer("billing")
            .is_connected())
        .await
    );
    let _b = client(&keys, &hub)
        .serve(second)
        .service_name("billing")
        .connect()
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || a
            .connection()
            .closed_reason()
            .is_some())
        .await,
        "the stale session is closed"
    );
    assert_eq!(
        hub.peer("billing").get("/v").receive_text().await.unwrap(),
        "second"
    );
    // Eve's key may connect but not take the name.
    let evil: Router = Router::new().route("/v", get(|| async { "eve" }));
    let e = client(&keys, &hub)
        .identity(eve)
        .serve(evil)
        .service_name("billing")
        .connect()
        .await
        .unwrap();
    let closed = eventually(Duration::from_secs(5), || {
        e.connection().closed_reason().is_some()
    })
    .await;
    assert!(closed, "the refused session is closed");
    assert_eq!(
        hub.peer("billing").get("/v").receive_text().await.unwrap(),
        "second"
    );
}

/// `known_hosts` as ssh(1) reads it. Before: `@revoked` lines were ignored (a revoked key was
/// accepted) and wildcard patterns too (accept-new learned an attacker's key where ssh reports
/// a changed one).
#[tokio::test]
async fn revoked_host_keys_and_wildcard_patterns_in_known_hosts() {
    let keys = Keys::new();
    let hub = server(&keys, Some(typed::router())).await;
    let dir = std::env::temp_dir().join(format!("rrssh-kh-rev-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let known = dir.join("known_hosts");
    let addr = hub.local_addr().to_string();
    let connect = |policy| {
        Client::builder(addr.clone())
            .user("ada")
            .identity(keys.client.clone())
            .host_keys(policy)
            .connect()
    };
    let host_line = keys.host.public_key().to_openssh().unwrap();
    let other = generate_ed25519("other").public_key().to_openssh().unwrap();

    // The right key, but revoked for every host: refused, even with accept-new.
    std::fs::write(
        &known,
        format!("[127.0.0.1]:* {host_line}\n@revoked * {host_line}\n"),
    )
    .unwrap();
    match connect(HostKeyPolicy::AcceptNew(known.clone())).await {
        Err(ConnectError::HostKey(e)) => assert!(e.to_string().contains("is revoked"), "{e}"),
        other => panic!("a revoked key was accepted: {other:?}"),
    }
    // A wildcard line with the right key accepts.
    std::fs::write(&known, format!("[127.0.0.?]:* {host_line}\n")).unwrap();
    connect(HostKeyPolicy::Strict(known.clone())).await.unwrap();
    // A wildcard line with another key is a changed key, not an unknown host to learn.
    std::fs::write(&known, format!("[127.*]:*,!nothing {other}\n")).unwrap();
    match connect(HostKeyPolicy::AcceptNew(known.clone())).await {
        Err(ConnectError::HostKey(e)) => assert!(e.to_string().contains("changed"), "{e}"),
        other => panic!("accept-new learned a key a wildcard line contradicts: {other:?}"),
    }
    let host_b64 = host_line.split(' ').nth(1).unwrap();
    let learned = || {
        std::fs::read_to_string(&known)
            .unwrap()
            .matches(host_b64)
            .count()
    };
    assert_eq!(learned(), 0);
    // A negated pattern takes the line away from the host: unknown, so accept-new learns.
    std::fs::write(&known, format!("[127.*]:*,![127.0.0.1]:* {other}\n")).unwrap();
    connect(HostKeyPolicy::AcceptNew(known.clone()))
        .await
        .unwrap();
    assert_eq!(learned(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}
