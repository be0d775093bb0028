//! Hubs sign what they send each other with their host keys: a NATS client that is not a hub
//! (here, a plain async-nats client on the same NATS server) cannot take a service's name,
//! call a service, answer a call, inject a chunk of a stream, or replay a call; and a hub whose
//! key is not trusted (or is trusted for another hub id) is not a member.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use rrssh::client::CallExt;
use rrssh::cluster::{Cluster, HubKeys};
use rrssh::keys::{HostKeyPolicy, generate_ed25519};
use rrssh::routing::post;
use rrssh::{Client, Hub, Server};

use super::{Keys, Nats, hub, hub_signing, keys, nats_available, service, service_router};
use crate::ssh::eventually;

/// A message as hubs framed them before signing: head length, JSON head, body.
fn framed(head: &serde_json::Value, body: &[u8]) -> Bytes {
    let head = serde_json::to_vec(head).unwrap();
    let mut out = (head.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&head);
    out.extend_from_slice(body);
    out.into()
}

/// The JSON head of a framed message.
fn head_of(payload: &[u8]) -> Option<serde_json::Value> {
    let len = u32::from_be_bytes(payload.get(..4)?.try_into().ok()?) as usize;
    serde_json::from_slice(payload.get(4..4 + len)?).ok()
}

/// A plain NATS client: no hub key.
async fn stranger(nats: &Nats) -> async_nats::Client {
    async_nats::connect(nats.url()).await.unwrap()
}

/// `nc` subscribed to `subject`, once the server holds the subscription: a message the
/// stranger sends itself after the SUB comes back only once the server has read both, in order
/// (a flush only empties the client's buffer).
async fn subscribed(nc: &async_nats::Client, subject: &str) -> async_nats::Subscriber {
    let subscriber = nc.subscribe(subject.to_owned()).await.unwrap();
    let probe = nc.new_inbox();
    let mut echo = nc.subscribe(probe.clone()).await.unwrap();
    nc.publish(probe, Bytes::new()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), echo.next())
        .await
        .expect("the NATS server echoes a message")
        .unwrap();
    subscriber
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Hubs `hub-a` and `hub-b`, and `svc-count` on `hub-b` counting its calls, seen from `hub-a`.
async fn two_hubs_counting(
    keys: &Keys,
    nats: &Nats,
) -> (Hub, Hub, Arc<AtomicUsize>, rrssh::ReconnectingClient) {
    let a = hub(keys, nats, "hub-a").await;
    let b = hub(keys, nats, "hub-b").await;
    let hits = Arc::new(AtomicUsize::new(0));
    let svc = counting(keys, "svc-count", &b, hits.clone());
    assert!(
        eventually(Duration::from_secs(10), || a
            .peer("svc-count")
            .is_connected())
        .await
    );
    (a, b, hits, svc)
}

/// A service named `name` on `hub` whose `POST /hit` counts its calls.
fn counting(
    keys: &Keys,
    name: &str,
    hub: &Hub,
    hits: Arc<AtomicUsize>,
) -> rrssh::ReconnectingClient {
    let router = service_router(name.to_owned()).route(
        "/hit",
        post(move || {
            hits.fetch_add(1, Ordering::SeqCst);
            std::future::ready("hit")
        }),
    );
    Client::builder(hub.local_addr().to_string())
        .user("svc")
        .identity(keys.service.clone())
        .host_keys(HostKeyPolicy::Pinned(keys.host.public_key().clone()))
        .serve(router)
        .service_name(name)
        .connect_persistent()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_nats_client_cannot_take_a_service_name() {
    if !nats_available() {
        return;
    }
    let nats = Nats::start().await;
    let keys = keys();
    let a = hub(&keys, &nats, "hub-a").await;
    let b = hub(&keys, &nats, "hub-b").await;
    let _svc = service(&keys, "svc-real", b.local_addr(), &[]);
    assert!(
        eventually(Duration::from_secs(10), || a
            .peer("svc-real")
            .is_connected())
        .await
    );

    // A fake hub `evil`: heartbeats, a name of its own, the real service's name taken over,
    // and an answer to anything sent to it.
    let nc = stranger(&nats).await;
    let kv = async_nats::jetstream::new(nc.clone())
        .get_key_value("rrssh_presence")
        .await
        .unwrap();
    let reached = Arc::new(AtomicUsize::new(0));
    let mut calls = subscribed(&nc, "rrssh.hub.evil").await;
    let (answering, count) = (nc.clone(), reached.clone());
    let answers = tokio::spawn(async move {
        while let Some(m) = calls.next().await {
            count.fetch_add(1, Ordering::SeqCst);
            let answer = framed(&serde_json::json!({"status": 200, "headers": []}), b"evil");
            if let Some(reply) = m.reply {
                let _ = answering.publish(reply, answer).await;
            }
        }
    });
    let entry = |since: u64| {
        let p = serde_json::json!({"hub": "evil", "fingerprint": "SHA256:x", "user": "svc", "since": since});
        Bytes::from(serde_json::to_vec(&p).unwrap())
    };
    let beating = kv.clone();
    let beats = tokio::spawn(async move {
        loop {
            let _ = beating.put("h.evil", now_ms().to_string().into()).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    kv.put("n.svc-fake", entry(now_ms())).await.unwrap();
    kv.put("n.svc-real", entry(now_ms())).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    for h in [&a, &b] {
        assert!(
            !h.peer("svc-fake").is_connected(),
            "a name the stranger wrote"
        );
        assert!(
            h.peers()
                .iter()
                .all(|p| p.name.as_deref() != Some("svc-fake"))
        );
        assert!(h.peers().iter().all(|p| p.hub.as_deref() != Some("evil")));
    }
    assert_eq!(a.peer("svc-real").remote_hub().as_deref(), Some("hub-b"));
    assert_eq!(
        a.peer("svc-real").get("/who").receive_text().await.unwrap(),
        "svc-real"
    );
    let err = a
        .peer("svc-fake")
        .get("/who")
        .timeout(Duration::from_secs(1))
        .receive_text()
        .await;
    assert!(err.is_err(), "{err:?}");
    // hub-b wrote its entry again over the stranger's.
    let mut taken_back = false;
    for _ in 0..50 {
        let v = kv.get("n.svc-real").await.unwrap().unwrap_or_default();
        if !v.is_empty() && !v.windows(6).any(|w| w == b"\"evil\"") {
            taken_back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(taken_back, "the real hub takes its name back");
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "nothing was routed to the stranger"
    );
    beats.abort();
    answers.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_from_a_plain_nats_client_never_reaches_the_service() {
    if !nats_available() {
        return;
    }
    let nats = Nats::start().await;
    let keys = keys();
    let (a, _b, hits, _svc) = two_hubs_counting(&keys, &nats).await;

    let nc = stranger(&nats).await;
    let forged = framed(
        &serde_json::json!({
            "call": "0123456789abcdef01234567",
            "service": "svc-count",
            "method": "POST",
            "target": "/hit",
            "headers": [["rrssh-caller-user", "admin"], ["rrssh-caller-key", "SHA256:admin"]],
        }),
        b"",
    );
    let asked = nc
        .send_request(
            "rrssh.hub.hub-b",
            async_nats::Request::new()
                .payload(forged.clone())
                .timeout(Some(Duration::from_secs(1))),
        )
        .await;
    assert!(asked.is_err(), "a forged call is not answered");
    nc.publish_with_reply("rrssh.hub.hub-b", "_INBOX.x", forged)
        .await
        .unwrap();
    nc.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the service never saw it");
    // A hub's call gets there.
    assert_eq!(
        a.peer("svc-count")
            .post("/hit")
            .receive_text()
            .await
            .unwrap(),
        "hit"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_nats_client_cannot_answer_a_call_or_inject_a_chunk() {
    if !nats_available() {
        return;
    }
    let nats = Nats::start().await;
    let keys = keys();
    let a = hub(&keys, &nats, "hub-a").await;
    let b = hub(&keys, &nats, "hub-b").await;
    let _svc = service(&keys, "svc-x", b.local_addr(), &[]);
    assert!(eventually(Duration::from_secs(10), || a.peer("svc-x").is_connected()).await);

    // The stranger sees every call, answers it at once and starts its stream with a forged
    // chunk that ends it.
    let nc = stranger(&nats).await;
    let mut calls = subscribed(&nc, "rrssh.hub.>").await;
    let seen = Arc::new(AtomicUsize::new(0));
    let (answering, count) = (nc.clone(), seen.clone());
    let forger = tokio::spawn(async move {
        while let Some(m) = calls.next().await {
            count.fetch_add(1, Ordering::SeqCst);
            // The hub's framing follows its signature: look for the head anywhere.
            let call = (0..m.payload.len().min(1024))
                .find_map(|i| head_of(&m.payload[i..]))
                .and_then(|h| h["call"].as_str().map(str::to_owned));
            if let Some(call) = call {
                let chunk = framed(
                    &serde_json::json!({"seq": 1, "end": true}),
                    b"[\"forged\"]\n",
                );
                let _ = answering
                    .publish(format!("rrssh.stream.{call}"), chunk)
                    .await;
            }
            if let Some(reply) = m.reply {
                let answer = framed(
                    &serde_json::json!({"status": 200, "headers": [], "stream": true}),
                    b"",
                );
                let _ = answering.publish(reply.clone(), answer).await;
                let plain = framed(
                    &serde_json::json!({"status": 200, "headers": []}),
                    b"forged",
                );
                let _ = answering.publish(reply, plain).await;
            }
        }
    });
    for _ in 0..10 {
        assert_eq!(
            a.peer("svc-x").get("/who").receive_text().await.unwrap(),
            "svc-x"
        );
    }
    let items: Vec<u64> = a
        .peer("svc-x")
        .stream("/count/100000")
        .items::<u64>()
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(items.len(), 100_000);
    assert!(items.iter().enumerate().all(|(k, v)| *v == k as u64));
    // The stranger reads the calls on its own task: it may count the last one a little later.
    let saw_all = eventually(Duration::from_secs(10), || {
        seen.load(Ordering::SeqCst) >= 11
    })
    .await;
    assert!(
        saw_all,
        "the stranger saw the calls: {}",
        seen.load(Ordering::SeqCst)
    );
    forger.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_call_is_refused() {
    if !nats_available() {
        return;
    }
    let nats = Nats::start().await;
    let keys = keys();
    let (a, _b, hits, _svc) = two_hubs_counting(&keys, &nats).await;

    let nc = stranger(&nats).await;
    let mut calls = subscribed(&nc, "rrssh.hub.hub-b").await;
    assert_eq!(
        a.peer("svc-count")
            .post("/hit")
            .receive_text()
            .await
            .unwrap(),
        "hit"
    );
    let captured = tokio::time::timeout(Duration::from_secs(10), calls.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // Sent again as it was (same reply subject), and with a reply subject of the stranger's.
    let reply = captured.reply.clone().unwrap();
    nc.publish_with_reply(captured.subject.clone(), reply, captured.payload.clone())
        .await
        .unwrap();
    let again = nc
        .send_request(
            captured.subject.clone(),
            async_nats::Request::new()
                .payload(captured.payload.clone())
                .timeout(Some(Duration::from_secs(1))),
        )
        .await;
    assert!(again.is_err(), "a replay is not answered");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the replay never reached the service"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_whose_key_is_not_trusted_is_not_a_member() {
    if !nats_available() {
        return;
    }
    let nats = Nats::start().await;
    let keys = keys();
    let trust = HubKeys::new()
        .with("hub-a", keys.host.public_key().clone())
        .with("hub-b", keys.host.public_key().clone());
    let member = |id: &str| {
        Cluster::new(nats.url())
            .hub_id(id)
            .trusted_hub_keys(trust.clone())
    };
    let a = hub_signing(&keys, &keys.host, member("hub-a")).await;
    let b = hub_signing(&keys, &keys.host, member("hub-b")).await;
    // hub-c signs with a key of the cluster's, but one not trusted for hub-c; hub-d with a key
    // nobody trusts. Both trust the members.
    let stranger_key = generate_ed25519("stranger");
    let c = hub_signing(&keys, &keys.host, member("hub-c")).await;
    let d = hub_signing(
        &keys,
        &stranger_key,
        member("hub-d").trust_hub("hub-d", stranger_key.public_key().clone()),
    )
    .await;
    let hits = Arc::new(AtomicUsize::new(0));
    let _on_b = counting(&keys, "svc-b", &b, hits.clone());
    let _on_c = service(&keys, "svc-c", c.local_addr(), &[]);
    let strangers_service = Client::builder(d.local_addr().to_string())
        .user("svc")
        .identity(keys.service.clone())
        .host_keys(HostKeyPolicy::Pinned(stranger_key.public_key().clone()))
        .serve(service_router("svc-d".into()))
        .service_name("svc-d")
        .connect_persistent();
    // The untrusted hubs see the members' names (they trust them)...
    assert!(
        eventually(Duration::from_secs(10), || c.peer("svc-b").is_connected()
            && d.peer("svc-b").is_connected())
        .await
    );
    assert!(eventually(Duration::from_secs(10), || a.peer("svc-b").is_connected()).await);
    tokio::time::sleep(Duration::from_secs(1)).await;
    // ...but the members do not see theirs, and do not serve their calls.
    for h in [&a, &b] {
        assert!(!h.peer("svc-c").is_connected() && !h.peer("svc-d").is_connected());
        assert!(
            h.peers()
                .iter()
                .all(|p| !matches!(p.name.as_deref(), Some("svc-c" | "svc-d")))
        );
    }
    for h in [&c, &d] {
        let r = h
            .peer("svc-b")
            .post("/hit")
            .timeout(Duration::from_secs(1))
            .receive_text()
            .await;
        assert!(r.is_err(), "{r:?}");
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "no call of theirs reached the service"
    );
    assert_eq!(
        a.peer("svc-b").post("/hit").receive_text().await.unwrap(),
        "hit"
    );
    drop(strangers_service);
}

#[tokio::test]
async fn a_hub_that_trusts_no_hub_refuses_to_start() {
    let keys = keys();
    let err = Server::new()
        .host_key(keys.host.clone())
        .authorized_keys(keys.authorized.clone())
        .cluster(Cluster::new("nats://127.0.0.1:1").hub_id("alone"))
        .bind("127.0.0.1:0")
        .await
        .expect_err("refused");
    let said = err.to_string();
    assert!(said.contains("trusts no hub's key"), "{said}");
    assert!(said.contains("--cluster-hub-keys"), "{said}");
    assert!(said.contains(" alone"), "names this hub's key line: {said}");
    // With trust, or explicitly insecure, it starts.
    for cluster in [
        Cluster::new("nats://127.0.0.1:1")
            .hub_id("alone")
            .trust_hub("alone", keys.host.public_key().clone()),
        Cluster::new("nats://127.0.0.1:1").insecure_unsigned(),
    ] {
        Server::new()
            .host_key(keys.host.clone())
            .authorized_keys(keys.authorized.clone())
            .cluster(cluster)
            .bind("127.0.0.1:0")
            .await
            .unwrap();
    }
    // A trusted key for this hub that is not its own is a mistake said at once.
    let other = generate_ed25519("other");
    let err = Server::new()
        .host_key(keys.host.clone())
        .authorized_keys(keys.authorized.clone())
        .cluster(
            Cluster::new("nats://127.0.0.1:1")
                .hub_id("alone")
                .trust_hub("alone", other.public_key().clone()),
        )
        .bind("127.0.0.1:0")
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("other keys for this hub"), "{err}");
}
