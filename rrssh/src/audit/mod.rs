//! An audit trail: one JSON line per login (accepted or refused, with why), call (caller,
//! route, status, duration, bytes), tunnel and connection, appended to a file
//! (`rrssh serve --audit FILE`). Give an [`AuditLog`] to
//! [`Server::observe`](crate::Server::observe), and [`watch`](AuditLog::watch) the hub for
//! connections.
//!
//! ```text
//! {"time":"2026-12-03T05:40:12.113Z","event":"login","user":"ada","fingerprint":"SHA256:…","remote":"127.0.0.1:50122","result":"accepted"}
//! {"time":"2026-12-03T05:40:12.140Z","event":"call","user":"ada","fingerprint":"SHA256:…","method":"GET","route":"/users/{id}","status":200,"duration_ms":0.41,"request_bytes":0,"response_bytes":27}
//! ```
//!
//! Lines are written by a thread of their own, so a slow disk never holds up a connection.
//! The queue to it holds at most [`QUEUE`] lines: past that (a flood faster than the disk),
//! lines are left out and counted, and the next line written says how many
//! (`{"event":"dropped","count":N}`).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use serde_json::{Value, json};

use crate::Peer;
use crate::hub::HubEvent;
use crate::observe::{Event, Observer};

/// How many lines wait for the writer at most.
pub const QUEUE: usize = 8192;

/// An append-only JSON-lines audit log (see the [module docs](self)).
#[derive(Clone)]
pub struct AuditLog {
    tx: SyncSender<Value>,
    dropped: Arc<AtomicU64>,
    /// Lines queued and not yet on disk.
    pending: Arc<AtomicU64>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("dropped", &self.dropped.load(Ordering::Relaxed))
            .finish()
    }
}

impl AuditLog {
    /// Appends to `path` (made with mode 600 if new).
    pub fn open(path: impl AsRef<Path>) -> std::io::Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path)?;
        Ok(Self::to_writer(file))
    }

    /// Writes the lines to `out`, from a thread of its own.
    pub fn to_writer(out: impl Write + Send + 'static) -> Self {
        let (tx, rx) = sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let pending = Arc::new(AtomicU64::new(0));
        let (counted, written) = (dropped.clone(), pending.clone());
        std::thread::Builder::new()
            .name("rrssh-audit".into())
            .spawn(move || write_lines(rx, out, &counted, &written))
            .expect("cannot start the audit log's thread");
        Self {
            tx,
            dropped,
            pending,
        }
    }

    /// Waits, up to `limit`, until every line queued so far is written and flushed (before
    /// the process exits).
    pub fn flush_for(&self, limit: std::time::Duration) {
        let until = std::time::Instant::now() + limit;
        while self.pending.load(Ordering::Acquire) > 0 && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// How many lines were left out because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn push(&self, mut line: Value) {
        if let Value::Object(map) = &mut line {
            map.insert(
                "time".into(),
                Value::String(jiff::Timestamp::now().to_string()),
            );
        }
        self.pending.fetch_add(1, Ordering::AcqRel);
        match self.tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.pending.fetch_sub(1, Ordering::AcqRel);
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {
                self.pending.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// Logs the connections of `hub` as they come and go, until the hub is gone. Spawns a task
    /// on the current runtime.
    pub fn watch(&self, hub: &crate::Hub) {
        let me = self.clone();
        let mut events = hub.events();
        tokio::spawn(async move {
            use futures_util::StreamExt;
            while let Some(e) = events.next().await {
                match e {
                    HubEvent::Connected { name, peer } => me.push(with_peer(
                        json!({"event": "connected", "name": name}),
                        Some(&peer),
                    )),
                    HubEvent::Disconnected { name, peer, reason } => me.push(with_peer(
                        json!({"event": "disconnected", "name": name, "reason": reason}),
                        Some(&peer),
                    )),
                    HubEvent::Refused { name, peer } => me.push(with_peer(
                        json!({"event": "name refused", "name": name}),
                        Some(&peer),
                    )),
                }
            }
        });
    }
}

fn with_peer(mut line: Value, peer: Option<&Peer>) -> Value {
    if let (Value::Object(map), Some(p)) = (&mut line, peer) {
        map.insert("user".into(), p.user().into());
        map.insert("fingerprint".into(), p.fingerprint().into());
        if let Some(addr) = p.info().remote_addr {
            map.insert("remote".into(), addr.to_string().into());
        }
    }
    line
}

fn write_lines(rx: Receiver<Value>, out: impl Write, dropped: &AtomicU64, pending: &AtomicU64) {
    let mut out = std::io::BufWriter::new(out);
    let mut reported = 0;
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(line) = next {
            taken += 1;
            let _ = serde_json::to_writer(&mut out, &line);
            let _ = out.write_all(b"\n");
            let total = dropped.load(Ordering::Relaxed);
            if total > reported {
                let _ = writeln!(
                    out,
                    "{}",
                    json!({"event": "dropped", "count": total - reported,
                           "time": jiff::Timestamp::now().to_string()})
                );
                reported = total;
            }
            next = rx.try_recv().ok();
        }
        // Out on disk once the queue is empty.
        let _ = out.flush();
        pending.fetch_sub(taken, Ordering::AcqRel);
    }
}

impl Observer for AuditLog {
    fn event(&self, event: &Event<'_>) {
        let line = match event {
            Event::Login {
                user,
                fingerprint,
                certificate,
                remote,
                carrier,
                refused,
            } => json!({
                "event": "login",
                "carrier": carrier,
                "user": user,
                "fingerprint": fingerprint,
                "certificate": certificate,
                "remote": remote.map(|r| r.to_string()),
                "result": if refused.is_some() { "refused" } else { "accepted" },
                "reason": refused,
            }),
            Event::Call {
                peer,
                method,
                route,
                status,
                duration,
                request_bytes,
                response_bytes,
            } => with_peer(
                json!({
                    "event": "call",
                    "method": method.as_str(),
                    "route": route,
                    "status": status,
                    "duration_ms": duration.as_secs_f64() * 1000.0,
                    "request_bytes": request_bytes,
                    "response_bytes": response_bytes,
                }),
                *peer,
            ),
            Event::Refused {
                peer,
                reason,
                status,
            } => with_peer(
                json!({"event": "call refused", "reason": reason, "status": status}),
                *peer,
            ),
            Event::Tunnel {
                peer,
                target,
                refused,
            } => with_peer(
                json!({
                    "event": "tunnel",
                    "target": target,
                    "result": if refused.is_some() { "refused" } else { "opened" },
                    "reason": refused,
                }),
                Some(peer),
            ),
            Event::Terminal {
                peer,
                command,
                ended,
                refused,
            } => with_peer(
                json!({
                    "event": "terminal",
                    "command": command,
                    "result": match (refused, ended) {
                        (Some(_), _) => "refused",
                        (None, None) => "opened",
                        (None, Some(_)) => "closed",
                    },
                    "reason": refused,
                    "duration_ms": ended.map(|d| d.as_secs_f64() * 1000.0),
                }),
                Some(peer),
            ),
        };
        self.push(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn one_json_line_per_event() {
        let out = Shared::default();
        let log = AuditLog::to_writer(out.clone());
        log.event(&Event::Login {
            user: "ada",
            fingerprint: "SHA256:x",
            certificate: None,
            remote: None,
            carrier: "ssh",
            refused: Some("the key is not in authorized_keys"),
        });
        log.event(&Event::Call {
            peer: None,
            method: &http::Method::GET,
            route: "/hello",
            status: 200,
            duration: std::time::Duration::from_millis(2),
            request_bytes: 0,
            response_bytes: 5,
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let text = loop {
            let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
            if text.lines().count() >= 2 || std::time::Instant::now() > deadline {
                break text;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["event"], "login");
        assert_eq!(lines[0]["result"], "refused");
        assert_eq!(lines[0]["reason"], "the key is not in authorized_keys");
        assert_eq!(lines[1]["route"], "/hello");
        assert_eq!(lines[1]["status"], 200);
        assert!(lines[1]["time"].as_str().unwrap().ends_with('Z'));
    }
}
