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
