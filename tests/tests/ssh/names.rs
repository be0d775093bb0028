//! Service names on a hub belong to keys: reserved names, open registration, forgetting an
//! absent owner, and the bounds on names.

use std::time::Duration;

use rrssh::client::CallExt;
use rrssh::keys::{AuthorizedKeys, HostKeyPolicy, PrivateKey, generate_ed25519};
use rrssh::routing::get;
use rrssh::{Client, Hub, Router, Server};

use super::eventually;

fn line(options: &str, key: &PrivateKey) -> String {
    format!("{options} {}\n", key.public_key().to_openssh().unwrap())
}

async fn register(
    hub: &Hub,
    host: &PrivateKey,
    key: &PrivateKey,
    name: &str,
) -> Result<Client, String> {
    let answer = name.to_owned();
    let client = Client::builder(hub.local_addr().to_string())
        .user("svc")
        .identity(key.clone())
        .host_keys(HostKeyPolicy::Pinned(host.public_key().clone()))
        .serve(Router::new().route("/who", get(move || std::future::ready(answer.clone()))))
        .service_name(name)
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    // A refused name closes the connection with the reason; a call tells which happened.
    match client.get("/nothing").send().await {
        Err(rrssh::client::Error::Unavailable(why)) => Err(why),
        _ => Ok(client),
    }
}

async fn hub(text: &str, configure: impl FnOnce(Server) -> Server) -> (Hub, PrivateKey) {
    let host = generate_ed25519("host");
    let hub = configure(
        Server::new()
            .host_key(host.clone())
            .authorized_keys(AuthorizedKeys::parse(text, "authorized_keys").unwrap())
            .auth_rejection_time(Duration::from_millis(10)),
    )
    .bind("127.0.0.1:0")
    .await
    .unwrap();
    (hub, host)
}

/// Before: a key without `rrssh-services` took `billing` first; the real service was refused,
/// and callers reached the impostor.
#[tokio::test]
async fn a_name_listed_for_a_key_cannot_be_squatted() {
    let (billing, impostor) = (generate_ed25519("billing"), generate_ed25519("impostor"));
    let text = [
        line(r#"rrssh-users="svc",rrssh-services="billing""#, &billing),
        line(r#"rrssh-users="svc""#, &impostor),
    ]
    .concat();
    let (hub, host) = hub(&text, |s| s.open_registration(true)).await;
    let why = register(&hub, &host, &impostor, "billing")
        .await
        .unwrap_err();
    println!("impostor told: {why}");
    assert!(why.contains("reserved"), "{why}");
    assert!(!hub.peer("billing").is_connected());
    let _real = register(&hub, &host, &billing, "billing").await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || hub
            .peer("billing")
            .is_connected())
        .await
    );
    assert_eq!(
        hub.peer("billing")
            .get("/who")
            .receive_text()
            .await
            .unwrap(),
        "billing"
    );
    // Open registration lets the other key take names nobody lists.
    let _other = register(&hub, &host, &impostor, "scratch").await.unwrap();

    // Without open registration, a key without rrssh-services registers nothing.
    let (closed, host2) = self::hub(&text, |s| s).await;
    let why = register(&closed, &host2, &impostor, "scratch")
        .await
        .unwrap_err();
    assert!(why.contains("open registration"), "{why}");
}

/// Before: a name stayed its first key's until the hub restarted.
#[tokio::test]
async fn a_name_is_free_again_when_its_owner_has_been_gone_for_the_grace_period() {
    let (a, b) = (generate_ed25519("a"), generate_ed25519("b"));
    let text = [
        line(r#"rrssh-users="svc""#, &a),
        line(r#"rrssh-users="svc""#, &b),
    ]
    .concat();
    let (hub, host) = hub(&text, |s| {
        s.open_registration(true)
            .name_grace(Duration::from_millis(300))
    })
    .await;
    let first = register(&hub, &host, &a, "shared").await.unwrap();
    first.close().await;
    assert!(
        eventually(Duration::from_secs(5), || !hub
            .peer("shared")
            .is_connected())
        .await
    );
    let why = register(&hub, &host, &b, "shared").await.unwrap_err();
    assert!(why.contains("belongs to another key"), "{why}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let _second = register(&hub, &host, &b, "shared").await.unwrap();
    assert_eq!(
        hub.peer("shared").get("/who").receive_text().await.unwrap(),
        "shared"
    );
}

/// Before: names of up to 1 MB were registered, never forgotten, and logged in full.
#[tokio::test]
async fn names_are_bounded_in_length_characters_and_number() {
    let a = generate_ed25519("a");
    let text = line(r#"rrssh-users="svc""#, &a);
    let (hub, host) = hub(&text, |s| s.open_registration(true).max_names(2)).await;
    for bad in ["x".repeat(65), "a b".into(), "a/b".into(), "é".into()] {
        let why = register(&hub, &host, &a, &bad).await.unwrap_err();
        println!("{bad:?}: {why}");
        assert!(why.contains("service name is"), "{why}");
    }
    let _one = register(&hub, &host, &a, "one").await.unwrap();
    let _two = register(&hub, &host, &a, "two").await.unwrap();
    let why = register(&hub, &host, &a, "three").await.unwrap_err();
    assert!(why.contains("limit of 2"), "{why}");
    assert_eq!(hub.peers().len(), 2);
}
