//! Authorization by SSH identity over real connections: scopes, groups and service names from
//! `authorized_keys`, 401 vs 403, and refused service registrations.

use std::time::Duration;

use futures_util::StreamExt;
use rrssh::auth::{self, Rule};
use rrssh::client::{CallExt, Error};
use rrssh::extract::PeerInfo;
use rrssh::hub::HubEvent;
use rrssh::keys::{AuthorizedKeys, HostKeyPolicy, PrivateKey, generate_ed25519};
use rrssh::routing::get;
use rrssh::test::TestClient;
use rrssh::transport::ConnectionEvent;
use rrssh::{Client, Path, Router, StatusCode, routes};

use super::eventually;

/// Lists the invoices.
#[rrssh::get("/invoices", scope = "billing:read")]
async fn invoices() -> &'static str {
    "[]"
}

/// Refunds an invoice.
#[rrssh::post("/refund/{id}", scope = "billing:write")]
async fn refund(Path(id): Path<u64>) -> String {
    format!("refunded {id}")
}

fn line(options: &str, key: &PrivateKey) -> String {
    format!("{options} {}\n", key.public_key().to_openssh().unwrap())
}

struct Setup {
    host: PrivateKey,
    reader: PrivateKey,
    admin: PrivateKey,
    nobody: PrivateKey,
    sensor: PrivateKey,
    authorized: AuthorizedKeys,
}

fn setup() -> Setup {
    let (host, reader, admin, nobody, sensor) = (
        generate_ed25519("host"),
        generate_ed25519("reader"),
        generate_ed25519("admin"),
        generate_ed25519("nobody"),
        generate_ed25519("sensor"),
    );
    let text = [
        line(r#"rrssh-scopes="billing:read""#, &reader),
        line(r#"rrssh-scopes="billing:*",rrssh-groups="ops""#, &admin),
        line("", &nobody).trim_start().to_owned(),
        line(r#"rrssh-users="sensor",rrssh-services="sensor-*""#, &sensor),
    ]
    .concat();
    let authorized = AuthorizedKeys::parse(&text, "authorized_keys")
        .unwrap()
        .owned_by("ada");
    Setup {
        host,
        reader,
        admin,
        nobody,
        sensor,
        authorized,
    }
}

async fn connect(s: &Setup, hub: &rrssh::Hub, key: &PrivateKey) -> Client {
    Client::builder(hub.local_addr().to_string())
        .user("ada")
        .identity(key.clone())
        .host_keys(HostKeyPolicy::Pinned(s.host.public_key().clone()))
        .connect()
        .await
        .unwrap()
}

fn status_of(e: Error) -> (StatusCode, String) {
    match e {
        Error::Status { status, body } => (status, body.message),
        other => panic!("expected a status, got {other:?}"),
    }
}

#[tokio::test]
async fn scopes_from_authorized_keys_decide_per_route() {
    let s = setup();
    let app = Router::new().mount(routes![invoices, refund]).route(
        "/ops",
        get(|| async { "restarted" }).layer(auth::require(Rule::group("ops"))),
    );
    let hub = rrssh::Server::new()
        .router(app)
        .host_key(s.host.clone())
        .authorized_keys(s.authorized.clone())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let reader = connect(&s, &hub, &s.reader).await;
    let admin = connect(&s, &hub, &s.admin).await;
    let nobody = connect(&s, &hub, &s.nobody).await;

    assert_eq!(invoices::call(&reader).await.unwrap(), "[]");
    let (status, msg) = status_of(refund::call(&reader, 7).await.unwrap_err());
    println!("reader refunding: {status} {msg}");
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(msg.contains("requires scope `billing:write`"), "{msg}");
    assert!(msg.contains("SHA256:"), "the 403 names the key: {msg}");

    assert_eq!(invoices::call(&admin).await.unwrap(), "[]");
    assert_eq!(refund::call(&admin, 7).await.unwrap(), "refunded 7");
    assert_eq!(admin.get("/ops").receive_text().await.unwrap(), "restarted");

    let (status, _) = status_of(invoices::call(&nobody).await.unwrap_err());
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, msg) = status_of(nobody.get("/ops").receive_text().await.unwrap_err());
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(msg.contains("group `ops`"), "{msg}");
}

#[tokio::test]
async fn no_peer_is_401_and_a_wrong_peer_is_403() {
    let app = Router::new()
        .route("/keys", get(|| async { "ok" }))
        .route_layer(auth::require(
            Rule::keys(["SHA256:ada"]).or(Rule::users(["root"])),
        ));
    let ada = TestClient::new(app.clone()).with_peer(PeerInfo::new("ada", "SHA256:ada"));
    let root = TestClient::new(app.clone()).with_peer(PeerInfo::new("root", "SHA256:other"));
    let eve = TestClient::new(app.clone()).with_peer(PeerInfo::new("eve", "SHA256:eve"));
    let anonymous = TestClient::new(app).without_peer();
    assert_eq!(ada.get("/keys").receive_text().await.unwrap(), "ok");
    assert_eq!(root.get("/keys").receive_text().await.unwrap(), "ok");
    let (status, msg) = status_of(eve.get("/keys").receive_text().await.unwrap_err());
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        msg.contains("one of the keys SHA256:ada or one of the users root"),
        "{msg}"
    );
    let (status, _) = status_of(anonymous.get("/keys").receive_text().await.unwrap_err());
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // route_layer leaves unknown paths alone.
    let (status, _) = status_of(anonymous.get("/nope").receive_text().await.unwrap_err());
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[test]
fn malformed_scopes_are_a_startup_error_naming_the_line() {
    let key = generate_ed25519("k");
    let text = format!(
        "{}{}",
        line(r#"rrssh-scopes="billing:read""#, &key),
        line(r#"rrssh-scopes="billing read,,x""#, &key)
    );
    let err = AuthorizedKeys::parse(&text, "/etc/rrssh/authorized_keys").unwrap_err();
    let msg = err.to_string();
    println!("{msg}");
    assert!(msg.contains("/etc/rrssh/authorized_keys"), "{msg}");
    assert!(msg.contains("line 2"), "{msg}");
    assert!(msg.contains("rrssh-scopes"), "{msg}");
    let flag = format!("rrssh-groups {}", key.public_key().to_openssh().unwrap());
    let msg = AuthorizedKeys::parse(&flag, "keys")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("needs a value"), "{msg}");
}

#[tokio::test]
async fn a_service_may_register_only_the_names_its_key_lists() {
    let s = setup();
    let hub = rrssh::Server::new()
        .host_key(s.host.clone())
        .authorized_keys(s.authorized.clone())
        .auth_rejection_time(Duration::from_millis(10))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let mut events = hub.events();
    let service = |name: &str| {
        Client::builder(hub.local_addr().to_string())
            .user("sensor")
            .identity(s.sensor.clone())
            .host_keys(HostKeyPolicy::Pinned(s.host.public_key().clone()))
            .serve(Router::new().route("/t", get(|| async { "21.5" })))
            .service_name(name)
    };
    let wrong = service("billing").connect_persistent();
    let mut wrong_events = wrong.events();
    let refused = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(HubEvent::Refused { name, peer }) = events.next().await {
                break (name, peer);
            }
        }
    })
    .await
    .expect("the hub reports the refusal");
    assert_eq!(refused.0, "billing");
    let reason = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(ConnectionEvent::Disconnected { reason }) = wrong_events.recv().await {
                break reason;
            }
        }
    })
    .await
    .unwrap();
    println!("service told: {reason}");
    assert!(
        reason.contains("may not register the service name `billing`"),
        "{reason}"
    );
    assert!(!hub.peer("billing").is_connected());
    drop(wrong);

    let right = service("sensor-1").connect_persistent();
    assert!(
        eventually(Duration::from_secs(5), || hub
            .peer("sensor-1")
            .is_connected())
        .await
    );
    assert_eq!(
        hub.peer("sensor-1").get("/t").receive_text().await.unwrap(),
        "21.5"
    );
    drop(right);
}

/// Caller access through a hub: each caller reaches only the peers its `call:NAME` scopes name.
#[tokio::test]
async fn callers_reach_only_the_peers_their_keys_may_call() {
    let host = generate_ed25519("host");
    let (svc_key, billing_caller, stranger) = (
        generate_ed25519("svc"),
        generate_ed25519("billing-caller"),
        generate_ed25519("stranger"),
    );
    let text = [
        line("", &svc_key).trim_start().to_owned(),
        line(r#"rrssh-scopes="call:billing""#, &billing_caller),
        line("", &stranger).trim_start().to_owned(),
    ]
    .concat();
    let hub = rrssh::Server::new()
        .host_key(host.clone())
        .authorized_keys(
            AuthorizedKeys::parse(&text, "authorized_keys")
                .unwrap()
                .owned_by("ada"),
        )
        .relay(true)
        .open_registration(true)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let dial = |key: &PrivateKey| {
        Client::builder(hub.local_addr().to_string())
            .user("ada")
            .identity(key.clone())
            .host_keys(HostKeyPolicy::Pinned(host.public_key().clone()))
    };
    let echo_caller = Router::new().route(
        "/who",
        get(|h: http::HeaderMap| async move {
            h.get("rrssh-caller-fingerprint")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        }),
    );
    let mut services = Vec::new();
    for name in ["billing", "payroll"] {
        services.push(
            dial(&svc_key)
                .serve(echo_caller.clone())
                .service_name(name)
                .connect()
                .await
                .unwrap(),
        );
    }
    assert!(eventually(Duration::from_secs(5), || hub.peers().len() == 2).await);
    let base = rrssh::hub::relay::PEERS_PATH;

    let caller = dial(&billing_caller).connect().await.unwrap();
    let listed: Vec<rrssh::hub::relay::PeerListing> = caller.get(base).receive().await.unwrap();
    assert_eq!(
        listed.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["billing"],
        "only the peers it may call"
    );
    let who = caller
        .get(&format!("{base}/billing/who"))
        .receive_text()
        .await
        .unwrap();
    assert_eq!(who, rrssh::keys::fingerprint(billing_caller.public_key()));
    let (status, msg) = status_of(
        caller
            .get(&format!("{base}/payroll/who"))
            .receive_text()
            .await
            .unwrap_err(),
    );
    println!("billing caller to payroll: {status} {msg}");
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(msg.contains("call:payroll"), "{msg}");

    let nobody = dial(&stranger).connect().await.unwrap();
    let listed: Vec<rrssh::hub::relay::PeerListing> = nobody.get(base).receive().await.unwrap();
    assert!(listed.is_empty());
    let (status, _) = status_of(
        nobody
            .get(&format!("{base}/billing/who"))
            .receive_text()
            .await
            .unwrap_err(),
    );
    assert_eq!(status, StatusCode::FORBIDDEN);
    drop(services);
}

/// The login name is bound to the key: a key listed for `ada` cannot log in as `root` and pass
/// `Rule::users(["root"])`; per-user files bind their keys to their user; a key bound to no
/// name stops the server from starting.
#[tokio::test]
async fn a_key_logs_in_only_under_a_name_it_is_bound_to() {
    let (host, ada, root, bob) = (
        generate_ed25519("host"),
        generate_ed25519("ada"),
        generate_ed25519("root"),
        generate_ed25519("bob"),
    );
    let text = [
        line(r#"rrssh-users="ada""#, &ada),
        line(r#"rrssh-users="root""#, &root),
    ]
    .concat();
    let dir = std::env::temp_dir().join(format!("rrssh-user-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bob"), line("", &bob).trim_start()).unwrap();
    let app = Router::new().route(
        "/admin",
        get(|peer: rrssh::Peer| async move { peer.user().to_owned() })
            .layer(auth::require(Rule::users(["root"]))),
    );
    let hub = rrssh::Server::new()
        .router(app)
        .host_key(host.clone())
        .authorized_keys(AuthorizedKeys::parse(&text, "authorized_keys").unwrap())
        .authorized_keys_file(format!("{}/%u", dir.display()))
        .auth_rejection_time(Duration::from_millis(10))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let dial = |user: &str, key: &PrivateKey| {
        Client::builder(hub.local_addr().to_string())
            .user(user)
            .identity(key.clone())
            .host_keys(HostKeyPolicy::Pinned(host.public_key().clone()))
            .connect()
    };
    // Before: ada's key logging in as root was admitted and passed Rule::users(["root"]).
    for (user, key) in [
        ("root", &ada),
        ("ada", &root),
        ("ada", &bob),
        ("../bob", &bob),
    ] {
        match dial(user, key).await {
            Err(rrssh::transport::ConnectError::AuthRejected { user: u, .. }) => {
                assert_eq!(u, user)
            }
            Err(other) => panic!("{user}: expected AuthRejected, got {other}"),
            Ok(_) => panic!("{user}: a key logged in under a name it is not bound to"),
        }
    }
    let as_ada = dial("ada", &ada).await.unwrap();
    let (status, _) = status_of(as_ada.get("/admin").receive_text().await.unwrap_err());
    assert_eq!(status, StatusCode::FORBIDDEN);
    let as_root = dial("root", &root).await.unwrap();
    assert_eq!(as_root.get("/admin").receive_text().await.unwrap(), "root");
    // bob's own file binds his key to him.
    let as_bob = dial("bob", &bob).await.unwrap();
    let (status, _) = status_of(as_bob.get("/admin").receive_text().await.unwrap_err());
    assert_eq!(status, StatusCode::FORBIDDEN);
    std::fs::remove_dir_all(&dir).unwrap();

    // A key bound to no name is a startup error naming the line.
    let unbound = [
        line(r#"rrssh-users="ada""#, &ada),
        line("", &bob).trim_start().to_owned(),
    ]
    .concat();
    let err = rrssh::Server::new()
        .host_key(host)
        .authorized_keys(AuthorizedKeys::parse(&unbound, "authorized_keys").unwrap())
        .bind("127.0.0.1:0")
        .await
        .unwrap_err();
    println!("{err}");
    assert!(err.to_string().contains("line 2"), "{err}");
    assert!(err.to_string().contains("rrssh-users"), "{err}");
}

/// Before: on a `[::]` listener IPv4 clients appeared as `::ffff:127.0.0.1`, so
/// `from="*,!127.0.0.1"` admitted 127.0.0.1 and `from="127.0.0.1"` locked it out.
#[tokio::test]
async fn from_matches_ipv4_clients_of_an_ipv6_listener_as_ipv4() {
    let (host, allowed, denied, cidr) = (
        generate_ed25519("host"),
        generate_ed25519("allowed"),
        generate_ed25519("denied"),
        generate_ed25519("cidr"),
    );
    let text = [
        line(r#"rrssh-users="ada",from="127.0.0.1""#, &allowed),
        line(r#"rrssh-users="ada",from="*,!127.0.0.1""#, &denied),
        line(r#"rrssh-users="ada",from="*,!127.0.0.0/8""#, &cidr),
    ]
    .concat();
    let Ok(hub) = rrssh::Server::new()
        .host_key(host.clone())
        .authorized_keys(AuthorizedKeys::parse(&text, "authorized_keys").unwrap())
        .auth_rejection_time(Duration::from_millis(10))
        .bind("[::]:0")
        .await
    else {
        crate::skipped("IPv6 listener: this machine has no IPv6");
        return;
    };
    let dial = |key: &PrivateKey| {
        Client::builder(format!("127.0.0.1:{}", hub.local_addr().port()))
            .user("ada")
            .identity(key.clone())
            .host_keys(HostKeyPolicy::Pinned(host.public_key().clone()))
            .connect()
    };
    dial(&allowed)
        .await
        .expect("from=127.0.0.1 admits 127.0.0.1");
    assert!(dial(&denied).await.is_err(), "!127.0.0.1 refuses 127.0.0.1");
    assert!(dial(&cidr).await.is_err(), "!127.0.0.0/8 refuses 127.0.0.1");
}

/// Before: `command="…"` was ignored, so a key meant for one command got the API (and any
/// command or a shell with terminals on). Now, as under sshd, the forced command runs
/// whatever is asked, and the `rrssh` subsystem is refused.
#[tokio::test]
async fn a_forced_command_is_all_a_key_gets() {
    let (host, key) = (generate_ed25519("host"), generate_ed25519("backup"));
    let text = line(
        r#"rrssh-users="ada",command="echo forced:$SSH_ORIGINAL_COMMAND""#,
        &key,
    );
    let hub = rrssh::Server::new()
        .host_key(host.clone())
        .authorized_keys(AuthorizedKeys::parse(&text, "authorized_keys").unwrap())
        .router(Router::new().route("/secret", get(|| async { "secret" })))
        .terminal(rrssh::terminal::Terminal::shell("/bin/sh"))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let builder = || {
        Client::builder(hub.local_addr().to_string())
            .user("ada")
            .identity(key.clone())
            .host_keys(HostKeyPolicy::Pinned(host.public_key().clone()))
    };
    match builder().connect().await {
        Err(rrssh::transport::ConnectError::SubsystemRefused) => {}
        other => panic!("expected the subsystem refused, got {other:?}"),
    }
}
