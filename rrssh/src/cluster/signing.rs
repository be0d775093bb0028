//! What hubs send each other, signed with the sending hub's SSH key, and checked on receipt.
//!
//! A sealed message is `rrs1`, the sending hub's id (a length byte and the id), the signing time
//! (`u64` big-endian, milliseconds since the epoch), the signature (`u16` length, an SSH
//! signature, `SSHSIG` of PROTOCOL.sshsig, in the namespace [`NAMESPACE`]), then the payload as
//! it was before signing. What is signed binds the payload to where it goes: the NATS subject it
//! is published on (which names the receiving hub, or the call and the direction of a stream),
//! the reply subject (for a call: where its answer goes), the sending hub's id, the time, and the
//! SHA-256 of the payload (a call's whole head: service, method, target, every header with the
//! caller's `rrssh-caller-*`, the call id; and the body).
//!
//! A receiver drops a message that is unsigned, signed by a key it does not trust, signed by a
//! key trusted for another hub than the one named, or whose signature does not match. Where
//! asked, it also drops one signed longer ago (or further ahead) than the clock skew allowed,
//! and, through [`Seals::first_time`], one whose nonce it already saw within that window.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use russh::keys::ssh_encoding::{Decode, Encode};
use russh::keys::ssh_key::SshSig;
use russh::keys::{HashAlg, PrivateKey};

use super::presence::now_ms;
use super::trust::HubKeys;

/// The SSHSIG namespace of cluster messages (no other use of a hub's key can be taken for one).
pub(super) const NAMESPACE: &str = "rrssh-cluster-v1@rrssh";
const MAGIC: &[u8; 4] = b"rrs1";
/// How many call ids the replay cache holds (about 5 MiB when full); see [`Replay`].
pub(super) const REPLAY_ENTRIES: usize = 65_536;

/// Why a message was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum Refused {
    #[error("not signed by a hub")]
    Unsigned,
    #[error("a malformed signature")]
    Malformed,
    #[error("signed by a key no hub is trusted with, claiming to be hub `{0}`")]
    UnknownKey(String),
    #[error("signed by the key of hub(s) {hubs}, claiming to be hub `{claimed}`")]
    OtherHubsKey { claimed: String, hubs: String },
    #[error("signed as hub `{0}`, but the signature does not match")]
    BadSignature(String),
    #[error("signed by hub `{hub}`, but not by the hub it should come from (`{expected}`)")]
    NotFrom { hub: String, expected: String },
    #[error("signed by hub `{hub}` {age_ms} ms away from now, beyond the allowed clock skew")]
    Stale { hub: String, age_ms: u64 },
    #[error("a replay: hub `{0}` sent this call before")]
    Replayed(String),
}

/// A message that passed the checks.
#[derive(Debug)]
pub(super) struct Opened {
    /// The hub that signed it (empty for an unsigned message accepted by an insecure member).
    pub(super) hub: String,
    /// When it was signed (ms since the epoch).
    pub(super) ts: u64,
    pub(super) payload: Bytes,
}

/// This hub's key and what it trusts.
pub(super) struct Seals {
    me: String,
    key: PrivateKey,
    trusted: HubKeys,
    /// Accept anything (the check is skipped, what this hub sends is still signed).
    insecure: bool,
    skew_ms: u64,
    seen: Mutex<Replay>,
    /// The newest heartbeat time seen from each hub (signed ones only, so one per trusted hub).
    beats: Mutex<HashMap<String, u64>>,
}

impl std::fmt::Debug for Seals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seals")
            .field("me", &self.me)
            .field("trusted", &self.trusted.len())
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

/// The bytes the signature covers.
fn signed_data(subject: &str, reply: &str, hub: &str, ts: u64, payload: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(64 + subject.len() + reply.len() + hub.len());
    for part in [subject, reply, hub] {
        d.put_u32(u32::try_from(part.len()).unwrap_or(u32::MAX));
        d.put_slice(part.as_bytes());
    }
    d.put_u64(ts);
    d.put_slice(&HashAlg::Sha256.digest(payload));
    d
}

/// A sealed message's parts: hub, time, signature, payload.
fn split(msg: &Bytes) -> Option<(String, u64, SshSig, Bytes)> {
    let rest = msg.strip_prefix(MAGIC)?;
    let (&hub_len, rest) = rest.split_first()?;
    let hub = rest.get(..usize::from(hub_len))?;
    let rest = &rest[usize::from(hub_len)..];
    let ts = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let sig_len = usize::from(u16::from_be_bytes(rest.get(8..10)?.try_into().ok()?));
    let mut sig_bytes = rest.get(10..10 + sig_len)?;
    let sig = SshSig::decode(&mut sig_bytes).ok()?;
    let start = msg.len() - (rest.len() - 10 - sig_len);
    Some((
        String::from_utf8(hub.to_vec()).ok()?,
        ts,
        sig,
        msg.slice(start..),
    ))
}

impl Seals {
    /// `me` signs with `key` and trusts `trusted` (and itself).
    pub(super) fn new(
        me: String,
        key: PrivateKey,
        mut trusted: HubKeys,
        insecure: bool,
        skew: Duration,
    ) -> Self {
        trusted.extend(HubKeys::new().with(me.clone(), key.public_key().clone()));
        Self {
            me,
            key,
            trusted,
            insecure,
            skew_ms: u64::try_from(skew.as_millis()).unwrap_or(u64::MAX),
            seen: Mutex::new(Replay::new(REPLAY_ENTRIES)),
            beats: Mutex::default(),
        }
    }

    /// This hub's id.
    pub(super) fn me(&self) -> &str {
        &self.me
    }

    /// `payload`, signed for `subject` (and `reply`, for a request).
    pub(super) fn seal(&self, subject: &str, reply: &str, payload: &[u8]) -> Bytes {
        let ts = now_ms();
        let data = signed_data(subject, reply, &self.me, ts, payload);
        let sig = self
            .key
            .sign(NAMESPACE, HashAlg::Sha512, &data)
            .ok()
            .and_then(|s| s.encode_vec().ok())
            .unwrap_or_default();
        let mut out = BytesMut::with_capacity(16 + self.me.len() + sig.len() + payload.len());
        out.put_slice(MAGIC);
        out.put_u8(u8::try_from(self.me.len()).unwrap_or(u8::MAX));
        out.put_slice(self.me.as_bytes());
        out.put_u64(ts);
        out.put_u16(u16::try_from(sig.len()).unwrap_or(u16::MAX));
        out.put_slice(&sig);
        out.put_slice(payload);
        out.freeze()
    }

    /// Checks `msg`, received on `subject` (with `reply`): signed by a trusted hub with a key
    /// of that hub, by `from` if given, and within the clock skew if `fresh`.
    pub(super) fn open(
        &self,
        subject: &str,
        reply: &str,
        msg: &Bytes,
        from: Option<&str>,
        fresh: bool,
    ) -> Result<Opened, Refused> {
        let Some((hub, ts, sig, payload)) = split(msg) else {
            if self.insecure {
                return Ok(Opened {
                    hub: String::new(),
                    ts: now_ms(),
                    payload: msg.clone(),
                });
            }
            return Err(if msg.starts_with(MAGIC) {
                Refused::Malformed
            } else {
                Refused::Unsigned
            });
        };
        if self.insecure {
            return Ok(Opened { hub, ts, payload });
        }
        let Some(key) = self
            .trusted
            .keys_of(&hub)
            .iter()
            .find(|k| k.key_data() == sig.public_key())
        else {
            let hubs = self.trusted.hubs_of(sig.public_key());
            return Err(if hubs.is_empty() {
                Refused::UnknownKey(hub)
            } else {
                Refused::OtherHubsKey {
                    claimed: hub,
                    hubs: hubs.join(", "),
                }
            });
        };
        if let Some(expected) = from
            && expected != hub
        {
            return Err(Refused::NotFrom {
                hub,
                expected: expected.to_owned(),
            });
        }
        let age_ms = now_ms().abs_diff(ts);
        if fresh && age_ms > self.skew_ms {
            return Err(Refused::Stale { hub, age_ms });
        }
        let data = signed_data(subject, reply, &hub, ts, &payload);
        key.verify(NAMESPACE, &data, &sig)
            .map_err(|_| Refused::BadSignature(hub.clone()))?;
        Ok(Opened { hub, ts, payload })
    }

    /// Whether `nonce` (a call id) from the hub that signed `opened` is seen for the first time
    /// (only ask of a message [`Seals::open`] checked with `fresh`).
    pub(super) fn first_time(&self, opened: &Opened, nonce: &str) -> Result<(), Refused> {
        if self.insecure {
            return Ok(());
        }
        let key = format!("{}/{nonce}", opened.hub);
        super::lock(&self.seen)
            .admit(key, opened.ts, now_ms(), self.skew_ms)
            .map_err(|()| Refused::Replayed(opened.hub.clone()))
    }

    /// Whether a heartbeat signed by `hub` at `ts` is newer than any seen from it (an older or
    /// repeated one is a replay).
    pub(super) fn newer_beat(&self, hub: &str, ts: u64) -> bool {
        if self.insecure {
            return true;
        }
        let mut beats = super::lock(&self.beats);
        let last = beats.entry(hub.to_owned()).or_insert(0);
        if ts > *last {
            *last = ts;
            true
        } else {
            false
        }
    }
}

/// Logs (rate-limited) that a message on `subject` was dropped.
pub(super) fn dropped(what: &str, subject: &str, why: &Refused) {
    crate::logging::limited("cluster-refused", || {
        tracing::warn!(%subject, reason = %why, "cluster: dropped {what}");
    });
}

/// The call ids seen within the clock-skew window, at most `max` of them. When full, the
/// oldest is forgotten and its time becomes the floor: anything signed at or before the floor
/// is refused too, so a forgotten call cannot be replayed either (under a flood of more than
/// `max` calls per window, a call that took longer to arrive than the cache spans is refused).
struct Replay {
    set: HashSet<String>,
    order: VecDeque<(u64, String)>,
    floor: u64,
    max: usize,
}

impl Replay {
    fn new(max: usize) -> Self {
        Self {
            set: HashSet::new(),
            order: VecDeque::new(),
            floor: 0,
            max: max.max(1),
        }
    }

    fn admit(&mut self, key: String, ts: u64, now: u64, window: u64) -> Result<(), ()> {
        // Entries older than the window would be refused as stale anyway.
        while let Some((t, _)) = self.order.front()
            && t.saturating_add(window) < now
        {
            if let Some((_, k)) = self.order.pop_front() {
                self.set.remove(&k);
            }
        }
        if ts <= self.floor || self.set.contains(&key) {
            return Err(());
        }
        if self.order.len() >= self.max
            && let Some((t, k)) = self.order.pop_front()
        {
            self.floor = self.floor.max(t);
            self.set.remove(&k);
        }
        self.set.insert(key.clone());
        self.order.push_back((ts, key));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::{Algorithm, EcdsaCurve};

    fn key(alg: Algorithm) -> PrivateKey {
        PrivateKey::random(&mut russh::keys::key::safe_rng(), alg).unwrap()
    }

    fn pair() -> (Seals, Seals, PrivateKey) {
        let (ka, kb) = (key(Algorithm::Ed25519), key(Algorithm::Ed25519));
        let trust = HubKeys::new()
            .with("a", ka.public_key().clone())
            .with("b", kb.public_key().clone());
        let skew = Duration::from_secs(30);
        let a = Seals::new("a".into(), ka.clone(), trust.clone(), false, skew);
        let b = Seals::new("b".into(), kb, trust, false, skew);
        (a, b, ka)
    }

    #[test]
    fn a_sealed_message_opens_where_it_was_sent_and_nowhere_else() {
        let (a, b, _) = pair();
        let msg = a.seal("rrssh.hub.b", "_INBOX.1", b"head and body");
        let o = b.open("rrssh.hub.b", "_INBOX.1", &msg, None, true).unwrap();
        assert_eq!(
            (o.hub.as_str(), &o.payload[..]),
            ("a", &b"head and body"[..])
        );
        assert!(
            b.open("rrssh.hub.b", "_INBOX.1", &msg, Some("a"), true)
                .is_ok()
        );
        assert_eq!(
            b.open("rrssh.hub.b", "_INBOX.1", &msg, Some("c"), true)
                .unwrap_err(),
            Refused::NotFrom {
                hub: "a".into(),
                expected: "c".into()
            }
        );
        // Another subject, another reply subject, a changed byte: the signature fails.
        let bad = Refused::BadSignature("a".into());
        assert_eq!(
            b.open("rrssh.hub.c", "_INBOX.1", &msg, None, true)
                .unwrap_err(),
            bad
        );
        assert_eq!(
            b.open("rrssh.hub.b", "_INBOX.2", &msg, None, true)
                .unwrap_err(),
            bad
        );
        let mut tampered = msg.to_vec();
        *tampered.last_mut().unwrap() ^= 1;
        let tampered = Bytes::from(tampered);
        assert_eq!(
            b.open("rrssh.hub.b", "_INBOX.1", &tampered, None, true)
                .unwrap_err(),
            bad
        );
        // A copy whose claimed hub id was changed: b's key is not a's.
        let mut renamed = msg.to_vec();
        renamed[5] = b'b';
        let renamed = Bytes::from(renamed);
        assert_eq!(
            b.open("rrssh.hub.b", "_INBOX.1", &renamed, None, true)
                .unwrap_err(),
            Refused::OtherHubsKey {
                claimed: "b".into(),
                hubs: "a".into()
            }
        );
    }

    #[test]
    fn unsigned_unknown_and_stale_messages_are_refused() {
        let (_, b, _) = pair();
        let plain = Bytes::from_static(b"\0\0\0\x02{}");
        assert_eq!(
            b.open("s", "", &plain, None, false).unwrap_err(),
            Refused::Unsigned
        );
        let cut = Bytes::from_static(b"rrs1\x01a\0\0");
        assert_eq!(
            b.open("s", "", &cut, None, false).unwrap_err(),
            Refused::Malformed
        );
        let stranger = Seals::new(
            "a".into(),
            key(Algorithm::Ed25519),
            HubKeys::new(),
            false,
            Duration::from_secs(30),
        );
        assert_eq!(
            b.open("s", "", &stranger.seal("s", "", b"x"), None, false)
                .unwrap_err(),
            Refused::UnknownKey("a".into())
        );
        // A message signed 31 s ago (by a's key, at a time put back in the signed data).
        let (_, b, ka) = pair();
        let ts = now_ms() - 31_000;
        let data = signed_data("s", "", "a", ts, b"x");
        let sig = ka.sign(NAMESPACE, HashAlg::Sha512, &data).unwrap();
        let sig = sig.encode_vec().unwrap();
        let mut old = b"rrs1\x01a".to_vec();
        old.put_u64(ts);
        old.put_u16(u16::try_from(sig.len()).unwrap());
        old.extend_from_slice(&sig);
        old.push(b'x');
        let old = Bytes::from(old);
        assert!(matches!(
            b.open("s", "", &old, None, true),
            Err(Refused::Stale { .. })
        ));
        // Not asked to be fresh (a chunk of a long stream): accepted.
        assert!(b.open("s", "", &old, None, false).is_ok());
    }

    #[test]
    fn a_call_is_accepted_once_and_insecure_members_accept_anything() {
        let (a, b, _) = pair();
        let msg = a.seal("rrssh.hub.b", "r", b"x");
        let o = b.open("rrssh.hub.b", "r", &msg, None, true).unwrap();
        assert!(b.first_time(&o, "call-1").is_ok());
        assert_eq!(
            b.first_time(&o, "call-1"),
            Err(Refused::Replayed("a".into()))
        );
        assert!(b.first_time(&o, "call-2").is_ok());
        assert!(b.newer_beat("a", 10) && b.newer_beat("a", 11));
        assert!(!b.newer_beat("a", 11) && !b.newer_beat("a", 5));

        let open = Seals::new(
            "c".into(),
            key(Algorithm::Ed25519),
            HubKeys::new(),
            true,
            Duration::from_secs(30),
        );
        let plain = Bytes::from_static(b"plain");
        assert_eq!(
            &open.open("s", "", &plain, None, true).unwrap().payload[..],
            b"plain"
        );
        assert_eq!(
            &open.open("t", "", &msg, Some("z"), true).unwrap().payload[..],
            b"x"
        );
    }

    #[test]
    fn other_key_types_sign_too() {
        let k = key(Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256,
        });
        let trust = HubKeys::new().with("p", k.public_key().clone());
        let s = Seals::new("p".into(), k, trust.clone(), false, Duration::from_secs(30));
        let r = Seals::new(
            "q".into(),
            key(Algorithm::Ed25519),
            trust,
            false,
            Duration::from_secs(30),
        );
        assert!(
            r.open("s", "", &s.seal("s", "", b"x"), Some("p"), true)
                .is_ok()
        );
    }

    #[test]
    fn the_replay_cache_is_bounded_and_forgets_nothing_it_could_be_fooled_by() {
        let mut r = Replay::new(3);
        let window = 30_000;
        for (i, ts) in [1_000u64, 1_001, 1_002].iter().enumerate() {
            assert!(r.admit(format!("k{i}"), *ts, 2_000, window).is_ok());
        }
        assert!(r.admit("k1".into(), 1_001, 2_000, window).is_err());
        // Full: k0 is forgotten, and its time becomes the floor.
        assert!(r.admit("k3".into(), 1_003, 2_000, window).is_ok());
        assert_eq!(r.order.len(), 3);
        assert!(
            r.admit("k0".into(), 1_000, 2_000, window).is_err(),
            "replayed"
        );
        assert!(
            r.admit("k9".into(), 999, 2_000, window).is_err(),
            "below the floor"
        );
        // Past the window, entries go (a replay of them is stale by then).
        assert!(r.admit("k4".into(), 40_000, 40_000, window).is_ok());
        assert_eq!(r.order.len(), 1);
    }
}
