//! rrssh's grants carried in OpenSSH certificates (`services@rrssh`, `scopes@rrssh`,
//! `groups@rrssh` extensions): what the CA's `authorized_keys` line allows is the most a
//! certificate gets, and the certificate names what it gets within that.

use std::time::Duration;

use rrssh::client::CallExt;
use rrssh::keys::{AuthorizedKeys, CertificateRequest, generate_ed25519, sign_certificate};
use rrssh::routing::get;
use rrssh::{Json, Peer, Router};
use serde_json::{Value, json};

use super::Keys;

fn whoami() -> Router {
    Router::new().route(
        "/whoami",
        get(|peer: Peer| async move {
            Json(json!({
                "scopes": peer.scopes().names(),
                "services": peer.info().services.as_ref().map(|s| s.names().to_vec()),
            }))
        }),
    )
}

#[tokio::test]
async fn grants_in_a_certificate_narrow_those_of_its_ca_line() {
    let keys = Keys::new();
    let (narrow_ca, open_ca) = (generate_ed25519("narrow CA"), generate_ed25519("open CA"));
    let text = format!(
        "cert-authority,rrssh-users=\"*\",rrssh-scopes=\"call:billing,call:reports\",rrssh-services=\"svc-*\" {}\n\
         cert-authority,rrssh-users=\"*\" {}\n",
        narrow_ca.public_key().to_openssh().unwrap(),
        open_ca.public_key().to_openssh().unwrap()
    );
    let hub = rrssh::Server::new()
        .host_key(keys.host.clone())
        .authorized_keys(AuthorizedKeys::parse(&text, "authorized_keys").unwrap())
        .router(whoami())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let device = generate_ed25519("device");
    let login = |ca: &rrssh::keys::PrivateKey, grants: &[&str]| {
        let mut request = CertificateRequest::user("device", ["ada"], Duration::from_secs(600));
        request
            .extensions
            .extend(grants.iter().map(|g| (*g).to_owned()));
        let cert = sign_certificate(ca, device.public_key(), &request).unwrap();
        rrssh::Client::builder(hub.local_addr().to_string())
            .user("ada")
            .identity(device.clone())
            .certificate(cert)
            .host_keys(rrssh::keys::HostKeyPolicy::Pinned(
                keys.host.public_key().clone(),
            ))
            .connect()
    };
    let seen = |c: rrssh::Client| async move {
        let v: Value = c.get("/whoami").receive().await.unwrap();
        c.close().await;
        v
    };
    // No grant in the certificate: the line's.
    let v = seen(login(&narrow_ca, &[]).await.unwrap()).await;
    assert_eq!(v["scopes"], json!(["call:billing", "call:reports"]));
    assert_eq!(v["services"], json!(["svc-*"]));
    // Grants within the line's: those.
    let v = seen(
        login(
            &narrow_ca,
            &["scopes@rrssh=call:billing", "services@rrssh=svc-billing"],
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(v["scopes"], json!(["call:billing"]));
    assert_eq!(v["services"], json!(["svc-billing"]));
    // Some within and some beyond: only those within.
    let v = seen(
        login(&narrow_ca, &["scopes@rrssh=call:billing,admin"])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["scopes"], json!(["call:billing"]));
    // Nothing within: refused, rather than given nothing or everything.
    assert!(login(&narrow_ca, &["scopes@rrssh=admin"]).await.is_err());
    // A malformed grant: refused.
    assert!(login(&narrow_ca, &["scopes@rrssh=a b"]).await.is_err());
    // A line without grants of its own: the certificate's.
    let v = seen(login(&open_ca, &["scopes@rrssh=call:*"]).await.unwrap()).await;
    assert_eq!(v["scopes"], json!(["call:*"]));
    assert_eq!(v["services"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reverse_service_with_a_short_certificate_keeps_serving_through_renewals() {
    // Six-second certificates, renewed by the hub that holds their CA, through six hub
    // restarts, one every five sixths of a lifetime (30 s): each restart needs a certificate
    // newer than the first. `RRSSH_RENEWAL_LIFETIME=120` runs two-minute certificates for ten
    // minutes.
    let lifetime = Duration::from_secs(
        std::env::var("RRSSH_RENEWAL_LIFETIME")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(6),
    );
    let restart_every = lifetime * 5 / 6;
    let keys = Keys::new();
    let ca = generate_ed25519("fleet CA");
    let start = |addr: std::net::SocketAddr| {
        let (host, ca) = (keys.host.clone(), ca.clone());
        async move {
            // The old hub's port may take a moment to be free again.
            for _ in 0..40 {
                let bound = rrssh::Server::new()
                    .host_key(host.clone())
                    .trusted_user_ca_keys([ca.public_key().clone()])
                    .renew_certificates(ca.clone(), lifetime)
                    .relay(true)
                    .bind(addr)
                    .await;
                if let Ok(hub) = bound {
                    return hub;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("cannot bind {addr} again");
        }
    };
    let mut hub = start("127.0.0.1:0".parse().unwrap()).await;
    let addr = hub.local_addr();
    let device = generate_ed25519("device");
    let mut request = CertificateRequest::user("device-1", ["svc"], lifetime);
    request.extensions.extend([
        "scopes@rrssh=certificate:renew".to_owned(),
        "services@rrssh=svc".to_owned(),
    ]);
    let cert = sign_certificate(&ca, device.public_key(), &request).unwrap();
    let first_end = cert.valid_before_time().unwrap();
    let service = rrssh::Client::builder(addr.to_string())
        .user("svc")
        .identity(device.clone())
        .certificate(cert)
        .renew_certificates()
        .host_keys(rrssh::keys::HostKeyPolicy::Pinned(
            keys.host.public_key().clone(),
        ))
        .serve(Router::new().route("/ping", get(|| async { Json("pong") })))
        .service_name("svc")
        .backoff(
            rrssh::transport::Backoff::default()
                .initial(Duration::from_millis(50))
                .max(Duration::from_millis(200)),
        )
        .connect_persistent();
    let started = std::time::Instant::now();
    for round in 0..7 {
        assert!(
            super::eventually(Duration::from_secs(3), || hub.peer("svc").is_connected()).await,
            "round {round}: the service is (back) on the hub"
        );
        let pong: String = hub.peer("svc").get("/ping").receive().await.unwrap();
        assert_eq!(pong, "pong");
        if round == 6 {
            break;
        }
        tokio::time::sleep(restart_every).await;
        drop(hub);
        hub = start(addr).await;
    }
    assert!(
        std::time::SystemTime::now() > first_end + lifetime * 3,
        "the first certificate ended long before the last login"
    );
    // A certificate without the grant is not renewed, and says why.
    let other = generate_ed25519("other device");
    let plain = CertificateRequest::user("device-2", ["svc"], lifetime);
    let cert = sign_certificate(&ca, other.public_key(), &plain).unwrap();
    let c = rrssh::Client::builder(addr.to_string())
        .user("svc")
        .identity(other)
        .certificate(cert)
        .host_keys(rrssh::keys::HostKeyPolicy::Pinned(
            keys.host.public_key().clone(),
        ))
        .connect()
        .await
        .unwrap();
    let err = c
        .post(rrssh::keys::RENEW_PATH)
        .receive::<Value>()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("not granted certificate:renew"),
        "{err}"
    );
    c.close().await;
    println!(
        "served for {} s through renewals of {} s certificates",
        started.elapsed().as_secs(),
        lifetime.as_secs()
    );
    drop(service);
}
