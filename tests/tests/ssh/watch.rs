//! The hub's event stream (`STREAM /.well-known/rrssh/events`): a remote caller sees who
//! connects and leaves, limited to the peers it may call.

use std::time::Duration;

use futures_util::StreamExt as _;
use rrssh::client::CallExt as _;
use rrssh::hub::watch::{EVENTS_PATH, WatchEvent};
use rrssh::keys::{AuthorizedKeys, HostKeyPolicy, generate_ed25519};
use rrssh::{Client, Router, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_sees_the_peers_it_may_call_connect_and_leave() {
    let host = generate_ed25519("hub");
    let (caller, svc) = (generate_ed25519("caller"), generate_ed25519("svc"));
    let text = format!(
        "rrssh-users=\"ada\",rrssh-scopes=\"call:inventory\" {}\nrrssh-users=\"svc\" {}\n",
        caller.public_key().to_openssh().unwrap(),
        svc.public_key().to_openssh().unwrap()
    );
    let hub = Server::new()
        .host_key(host.clone())
        .authorized_keys(AuthorizedKeys::parse(&text, "authorized_keys").unwrap())
        .relay(true)
        .open_registration(true)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let dial = |user: &str, key: &rrssh::keys::PrivateKey| {
        Client::builder(hub.local_addr().to_string())
            .user(user)
            .identity(key.clone())
            .host_keys(HostKeyPolicy::Pinned(host.public_key().clone()))
    };
    let watcher = dial("ada", &caller).connect().await.unwrap();
    let mut events = watcher
        .stream(EVENTS_PATH)
        .items::<WatchEvent>()
        .await
        .unwrap();
    // billing is not the caller's to call: not shown. inventory is.
    let billing = dial("svc", &svc)
        .serve(Router::new())
        .service_name("billing")
        .connect()
        .await
        .unwrap();
    let inventory = dial("svc", &svc)
        .serve(Router::new())
        .service_name("inventory")
        .connect()
        .await
        .unwrap();
    let next = async |events: &mut rrssh::client::ClientStream<WatchEvent>| {
        tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("an event")
            .unwrap()
            .unwrap()
    };
    match next(&mut events).await {
        WatchEvent::Connected { name, user, .. } => {
            assert_eq!((name.as_str(), user.as_str()), ("inventory", "svc"));
        }
        other => panic!("expected inventory's connection, got {other:?}"),
    }
    billing.close().await;
    inventory.close().await;
    match next(&mut events).await {
        WatchEvent::Disconnected { name, .. } => assert_eq!(name, "inventory"),
        other => panic!("expected inventory's disconnection, got {other:?}"),
    }
}
