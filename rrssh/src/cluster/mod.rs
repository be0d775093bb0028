#![doc = include_str!("../docs/cluster.md")]

mod auth;
mod builder;
mod calls;
mod presence;
mod signing;
mod stream;
mod trust;
mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::Notify;

pub use self::builder::Cluster;
use self::presence::{Key, Presence, alive, hub_key, key_of, kv_subject, now_ms, parse_key};
use self::signing::{Seals, dropped};
pub use self::trust::{HubKeys, HubKeysError};
use crate::hub::{Registry, RemoteCall, RemotePeer};
use crate::{Request, client::Backoff};

/// `bytes` random bytes in hex: hub and call ids.
fn random_id(bytes: usize) -> String {
    let mut id = vec![0u8; bytes];
    let _ = getrandom::fill(&mut id);
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `hub` said it is alive within the last `ttl`.
fn hub_alive(hubs: &HashMap<String, Instant>, hub: &str, ttl: Duration) -> bool {
    hubs.get(hub).is_some_and(|t| alive(*t, ttl))
}

/// A name this hub holds.
#[derive(Debug, Clone)]
struct Held {
    presence: Presence,
    /// Written since it changed.
    written: bool,
}

/// A hub's part in the cluster.
pub(crate) struct Node {
    cfg: Cluster,
    /// This hub's key and the hubs it trusts.
    seals: Arc<Seals>,
    client: OnceLock<async_nats::Client>,
    /// Names other hubs hold, with their bucket revision.
    remote: Mutex<HashMap<String, (Presence, u64)>>,
    /// When each other hub last said it is alive.
    hubs: Arc<Mutex<HashMap<String, Instant>>>,
    /// Names this hub holds.
    local: Mutex<HashMap<String, Held>>,
    /// Names to delete from the bucket.
    gone: Mutex<Vec<String>>,
    changed: Notify,
}

impl crate::hub::Backplane for Cluster {
    fn start(
        self: Box<Self>,
        host_keys: &[russh::keys::PrivateKey],
        registry: &Registry,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), String> {
        let node = start(*self, host_keys, registry.clone(), stop)?;
        registry.set_remote(node);
        Ok(())
    }
}

/// Starts this hub's part: connects to NATS in the background (with backoff, again after any
/// loss), serves calls from other hubs, and keeps presence, until `stop` says the hub stopped
/// (or its sender is dropped with the hub); then this hub's names are taken out of the bucket.
/// What it sends is signed with the server's host key (`host_keys`) unless the cluster names
/// another; `Err` says why it cannot start (no key, or no trust given).
pub(crate) fn start(
    cfg: Cluster,
    host_keys: &[russh::keys::PrivateKey],
    registry: Registry,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Arc<Node>, String> {
    let key = cfg.signer(host_keys)?;
    let seals = Arc::new(Seals::new(
        cfg.hub_id.clone(),
        (*key).clone(),
        cfg.trusted.clone(),
        cfg.insecure,
        cfg.max_skew,
    ));
    let node = Arc::new(Node {
        cfg,
        seals,
        client: OnceLock::new(),
        remote: Mutex::default(),
        hubs: Arc::default(),
        local: Mutex::default(),
        gone: Mutex::default(),
        changed: Notify::new(),
    });
    let weak = Arc::downgrade(&node);
    let run = async move {
        let Some(n) = weak.upgrade() else { return };
        let (url, auth) = (n.cfg.url.clone(), n.cfg.auth.clone());
        drop(n);
        let options = match auth.options().await {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, %url, ?auth, "cluster: cannot read the NATS credentials");
                return;
            }
        };
        let client = match options
            .retry_on_initial_connect()
            .max_reconnects(None)
            .event_callback(move |event| async move {
                // An authorization violation or a TLS failure is said, not only retried.
                if let async_nats::Event::ServerError(_) | async_nats::Event::ClientError(_) = event
                {
                    crate::logging::limited("nats-error", || {
                        tracing::error!(%event, "cluster: NATS");
                    });
                }
            })
            .connect(url.as_str())
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, %url, "cluster: cannot use NATS");
                return;
            }
        };
        let Some(n) = weak.upgrade() else { return };
        let _ = n.client.set(client.clone());
        let serving = calls::serve(
            client.clone(),
            n.seals.clone(),
            n.cfg.hub_id.clone(),
            registry,
            weak.clone(),
        );
        drop(n);
        tokio::join!(serving, presence_loop(weak, client));
    };
    let leaving = node.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = run => {}
            _ = stop.wait_for(|s| *s) => {}
        }
        leaving.leave().await;
    });
    Ok(node)
}

impl Node {
    /// Takes this hub's names out of the bucket, so other hubs forget them now rather than one
    /// TTL later.
    async fn leave(&self) {
        let names: Vec<String> = lock(&self.local).drain().map(|(k, _)| k).collect();
        let Some(client) = self.client.get() else {
            return;
        };
        let js = async_nats::jetstream::new(client.clone());
        let gone = async {
            if let Ok(kv) = js.get_key_value(presence::BUCKET).await {
                for name in names {
                    let _ = kv.delete(key_of(&name)).await;
                }
                let _ = kv.delete(hub_key(&self.cfg.hub_id)).await;
            }
            let _ = client.flush().await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), gone).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keeps the bucket, this hub's names in it, and the watch on the others', through NATS
/// losses, until the node is gone.
async fn presence_loop(node: std::sync::Weak<Node>, client: async_nats::Client) {
    let js = async_nats::jetstream::new(client);
    let backoff = Backoff::default();
    let mut attempt = 0u32;
    loop {
        let Some(n) = node.upgrade() else { return };
        let ttl = n.cfg.ttl;
        drop(n);
        let kv = match js.get_key_value(presence::BUCKET).await {
            Ok(kv) => Ok(kv),
            Err(_) => js
                .create_key_value(presence::bucket())
                .await
                .map_err(|e| e.to_string()),
        };
        let kv = match kv {
            Ok(kv) => kv,
            Err(e) => {
                attempt += 1;
                let wait = backoff.delay(attempt);
                tracing::debug!(error = %e, ?wait, "cluster: presence bucket unavailable");
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        attempt = 0;
        let watch = tokio::spawn(watch(node.clone(), kv.clone()));
        // Everything held is written again: after a NATS restart, presence is rebuilt.
        if let Some(n) = node.upgrade() {
            for h in lock(&n.local).values_mut() {
                h.written = false;
            }
        }
        let failed = heartbeat(&node, &kv, ttl).await;
        watch.abort();
        if !failed {
            return;
        }
        tokio::time::sleep(backoff.delay(1)).await;
    }
}

/// Writes this hub's liveness every third of the TTL and its names when they change, and
/// sweeps the entries of hubs gone for long. Returns `true` when the bucket failed, `false`
/// when the node is gone.
async fn heartbeat(
    node: &std::sync::Weak<Node>,
    kv: &async_nats::jetstream::kv::Store,
    ttl: Duration,
) -> bool {
    let mut tick = tokio::time::interval(ttl / 3);
    loop {
        let Some(n) = node.upgrade() else {
            return false;
        };
        let beat = tokio::select! {
            _ = tick.tick() => true,
            () = n.changed.notified() => false,
        };
        let me = n.cfg.hub_id.clone();
        let seals = n.seals.clone();
        let writes: Vec<(String, Presence)> = lock(&n.local)
            .iter_mut()
            .filter(|(_, h)| !h.written)
            .map(|(k, h)| {
                h.written = true;
                (k.clone(), h.presence.clone())
            })
            .collect();
        let deletes = std::mem::take(&mut *lock(&n.gone));
        // Entries of hubs not heard from for long: whoever notices deletes them (only if
        // unchanged since seen, so a hub that came back keeps what it wrote again).
        let sweep: Vec<(String, u64)> = if beat {
            let hubs = lock(&n.hubs);
            let long = ttl * presence::SWEEP_AFTER_TTLS;
            lock(&n.remote)
                .iter()
                .filter(|(_, (p, _))| hubs.get(&p.hub).is_none_or(|t| t.elapsed() > long))
                .map(|(name, (_, rev))| (name.clone(), *rev))
                .collect()
        } else {
            Vec::new()
        };
        drop(n);
        if beat {
            let key = hub_key(&me);
            let value = seals.seal(&kv_subject(&key), "", now_ms().to_string().as_bytes());
            if let Err(e) = kv.put(key, value).await {
                tracing::debug!(error = %e, "cluster: heartbeat failed");
                return true;
            }
        }
        for (name, p) in writes {
            let key = key_of(&name);
            let value = seals.seal(
                &kv_subject(&key),
                "",
                &serde_json::to_vec(&p).unwrap_or_default(),
            );
            if let Err(e) = kv.put(key, value).await {
                tracing::debug!(error = %e, "cluster: presence write failed");
                if let Some(n) = node.upgrade()
                    && let Some(h) = lock(&n.local).get_mut(&name)
                {
                    h.written = false;
                }
                return true;
            }
        }
        for name in deletes {
            // Only if it is still this hub's entry: another hub may hold the name by now.
            if let Ok(Some(entry)) = kv.entry(key_of(&name)).await
                && entry_of(&seals, &entry.key, &entry.value).is_ok_and(|p| p.hub == me)
            {
                let _ = kv
                    .delete_expect_revision(key_of(&name), Some(entry.revision))
                    .await;
            }
        }
        for (name, rev) in sweep {
            let _ = kv.delete_expect_revision(key_of(&name), Some(rev)).await;
        }
    }
}

/// A name's entry as written in the bucket under `key`, if a trusted hub signed it as its own.
fn entry_of(seals: &Seals, key: &str, value: &bytes::Bytes) -> Result<Presence, signing::Refused> {
    let opened = seals.open(&kv_subject(key), "", value, None, false)?;
    let p: Presence =
        serde_json::from_slice(&opened.payload).map_err(|_| signing::Refused::Malformed)?;
    if !opened.hub.is_empty() && opened.hub != p.hub {
        return Err(signing::Refused::NotFrom {
            hub: opened.hub,
            expected: p.hub,
        });
    }
    Ok(p)
}

/// Follows the bucket: other hubs' names and heartbeats come and go.
async fn watch(node: std::sync::Weak<Node>, kv: async_nats::jetstream::kv::Store) {
    let Ok(mut entries) = kv.watch_with_history(">").await else {
        return;
    };
    while let Some(Ok(entry)) = entries.next().await {
        let Some(n) = node.upgrade() else { return };
        let put = entry.operation == async_nats::jetstream::kv::Operation::Put;
        match parse_key(&entry.key) {
            Key::Hub(hub) if hub != n.cfg.hub_id => {
                if !put {
                    lock(&n.hubs).remove(&hub);
                    continue;
                }
                let subject = kv_subject(&entry.key);
                match n.seals.open(&subject, "", &entry.value, Some(&hub), true) {
                    Ok(beat) if n.seals.newer_beat(&hub, beat.ts) => {
                        lock(&n.hubs).insert(hub, Instant::now());
                    }
                    Ok(_) => dropped(
                        "a replayed heartbeat",
                        &subject,
                        &signing::Refused::Replayed(hub),
                    ),
                    // The last heartbeat of a hub gone long ago: not an attack.
                    Err(why @ signing::Refused::Stale { .. }) => {
                        tracing::debug!(%subject, reason = %why, "cluster: an old heartbeat");
                    }
                    Err(why) => dropped("a heartbeat", &subject, &why),
                }
            }
            Key::Name(name) => {
                let p = if put {
                    match entry_of(&n.seals, &entry.key, &entry.value) {
                        Ok(p) => Some(p),
                        Err(why) => {
                            dropped("a presence entry", &kv_subject(&entry.key), &why);
                            // Ignored; if it overwrote one of our names, that is written again.
                            if let Some(h) = lock(&n.local).get_mut(&name) {
                                h.written = false;
                                n.changed.notify_one();
                            }
                            continue;
                        }
                    }
                } else {
                    None
                };
                match p {
                    Some(p) if p.hub != n.cfg.hub_id => {
                        lock(&n.remote).insert(name, (p, entry.revision));
                    }
                    _ => {
                        lock(&n.remote).remove(&name);
                        // One of our names deleted (swept while we were cut off): write it again.
                        if !put && let Some(h) = lock(&n.local).get_mut(&name) {
                            h.written = false;
                            n.changed.notify_one();
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

impl Node {
    /// The entry for `name` if another hub holds it and that hub is alive.
    fn live(&self, name: &str) -> Option<Presence> {
        let p = lock(&self.remote).get(name)?.0.clone();
        hub_alive(&lock(&self.hubs), &p.hub, self.cfg.ttl).then_some(p)
    }
}

impl crate::hub::Remote for Node {
    fn published(&self, name: &str, fingerprint: &str, user: &str) {
        lock(&self.local).insert(
            name.to_owned(),
            Held {
                presence: Presence {
                    hub: self.cfg.hub_id.clone(),
                    fingerprint: fingerprint.to_owned(),
                    user: user.to_owned(),
                    since: now_ms(),
                },
                written: false,
            },
        );
        lock(&self.remote).remove(name);
        self.changed.notify_one();
    }

    fn withdrawn(&self, name: &str) {
        if lock(&self.local).remove(name).is_some() {
            lock(&self.gone).push(name.to_owned());
            self.changed.notify_one();
        }
    }

    fn lookup(&self, name: &str) -> Option<RemotePeer> {
        self.live(name).map(|p| RemotePeer {
            name: name.to_owned(),
            hub: p.hub,
            fingerprint: p.fingerprint,
            user: p.user,
        })
    }

    fn peers(&self) -> Vec<RemotePeer> {
        let hubs = lock(&self.hubs);
        lock(&self.remote)
            .iter()
            .filter(|(_, (p, _))| hub_alive(&hubs, &p.hub, self.cfg.ttl))
            .map(|(name, (p, _))| RemotePeer {
                name: name.clone(),
                hub: p.hub.clone(),
                fingerprint: p.fingerprint.clone(),
                user: p.user.clone(),
            })
            .collect()
    }

    fn call(&self, name: &str, req: Request) -> Option<RemoteCall> {
        let hub = self.live(name)?.hub;
        let client = self.client.get()?.clone();
        let (hubs, ttl, which) = (self.hubs.clone(), self.cfg.ttl, hub.clone());
        let alive = Arc::new(move || hub_alive(&lock(&hubs), &which, ttl));
        Some(Box::pin(calls::call(
            client,
            self.seals.clone(),
            hub,
            name.to_owned(),
            req,
            self.cfg.default_timeout,
            alive,
        )))
    }
}

/// For the presence simulation in the tests: `hubs` cluster members on `url` with no SSH side,
/// each publishing its share of `names` service names; returns when every member sees every
/// name held by the others, with the time it took, or `Err` after `limit`. Not a stable API.
#[doc(hidden)]
pub async fn simulate_presence(
    url: &str,
    hubs: usize,
    names: usize,
    limit: Duration,
) -> Result<Duration, String> {
    use crate::hub::Remote;
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Each member signs with a key of its own; all trust each other.
    let keys: Vec<russh::keys::PrivateKey> = (0..hubs)
        .map(|_| {
            let mut rng = russh::keys::key::safe_rng();
            russh::keys::PrivateKey::random(&mut rng, russh::keys::Algorithm::Ed25519)
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    let trust = keys.iter().enumerate().fold(HubKeys::new(), |t, (h, k)| {
        t.with(format!("sim-{h}"), k.public_key().clone())
    });
    let nodes: Vec<Arc<Node>> = keys
        .iter()
        .enumerate()
        .map(|(h, key)| {
            let cfg = Cluster::new(url)
                .hub_id(format!("sim-{h}"))
                .trusted_hub_keys(trust.clone());
            start(
                cfg,
                std::slice::from_ref(key),
                Registry::default(),
                stop_rx.clone(),
            )
        })
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    for i in 0..names {
        nodes[i % hubs].published(&format!("sim-svc-{i}"), "SHA256:sim", "sim");
    }
    loop {
        let seen: Vec<usize> = nodes.iter().map(|n| n.peers().len()).collect();
        let want = |h: usize| names - (0..names).filter(|i| i % hubs == h).count();
        if seen.iter().enumerate().all(|(h, s)| *s == want(h)) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            return Err(format!(
                "after {limit:?} the members see {seen:?} of each other's names"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
