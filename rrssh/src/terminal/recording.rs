//! Recording terminal sessions as asciicast v2 files (what `asciinema play` replays, as
//! Teleport and Tailscale SSH record them): a header line, then one `[seconds, "o", text]` line
//! per chunk of output and `[seconds, "r", "COLSxROWS"]` per window change. What is typed is
//! not recorded (passwords), only what the program prints, as the screen shows it.
//!
//! A recording is bounded ([`Terminal::record`](super::Terminal::record)'s limit): past it, a
//! last line says so and the rest of the session is not written. Files are made anew (never
//! overwritten) with mode 600, named `UNIX-SECONDS-USER-N.cast` with the user's name reduced to
//! `[A-Za-z0-9._-]`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::Peer;

/// Recordings made by this process, for unique names.
static MADE: AtomicU64 = AtomicU64::new(0);

/// Where and how much to record.
#[derive(Debug, Clone)]
pub(crate) struct Recordings {
    pub(crate) dir: PathBuf,
    pub(crate) limit: u64,
}

/// One session's recording.
pub(crate) struct Recorder {
    start: Instant,
    state: tokio::sync::Mutex<State>,
}

struct State {
    /// `None` once the limit was reached or a write failed.
    file: Option<tokio::fs::File>,
    written: u64,
    limit: u64,
    /// The start of a UTF-8 character split between two chunks.
    carry: Vec<u8>,
}

impl Recorder {
    /// Makes the recording of a session of `peer` running `command` (`None`: the shell) in a
    /// window of `cols`×`rows`; returns it with its path.
    pub(crate) async fn create(
        to: &Recordings,
        peer: &Peer,
        command: Option<&str>,
        (cols, rows): (u16, u16),
        term: Option<&str>,
    ) -> std::io::Result<(Self, PathBuf)> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let path = to.dir.join(file_name(now.as_secs(), peer.user()));
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .await?;
        let mut header = json!({
            "version": 2,
            "width": cols,
            "height": rows,
            "timestamp": now.as_secs(),
            "title": command.unwrap_or("shell"),
            "env": {"TERM": term, "RRSSH_USER": peer.user(), "RRSSH_FINGERPRINT": peer.fingerprint()},
        })
        .to_string();
        header.push('\n');
        file.write_all(header.as_bytes()).await?;
        let state = State {
            file: Some(file),
            written: header.len() as u64,
            limit: to.limit,
            carry: Vec::new(),
        };
        let recorder = Self {
            start: Instant::now(),
            state: tokio::sync::Mutex::new(state),
        };
        Ok((recorder, path))
    }

    /// Records what the program printed.
    pub(crate) async fn output(&self, bytes: &[u8]) {
        let mut st = self.state.lock().await;
        let mut all = std::mem::take(&mut st.carry);
        all.extend_from_slice(bytes);
        // A character cut at the end of the chunk waits for the rest of it.
        let cut = incomplete_tail(&all);
        st.carry = all.split_off(all.len() - cut);
        if all.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&all);
        let ended = self.event(&mut st, "o", &text).await;
        // A recording that ended is closed with the lock released.
        drop(st);
        drop(ended);
    }

    /// Records a window change.
    pub(crate) async fn resize(&self, cols: u16, rows: u16) {
        let mut st = self.state.lock().await;
        let ended = self.event(&mut st, "r", &format!("{cols}x{rows}")).await;
        drop(st);
        drop(ended);
    }

    /// Writes one event line; returns the file if the recording ended with it (the limit, or a
    /// failed write), for the caller to close once the lock is released.
    async fn event(&self, st: &mut State, kind: &str, data: &str) -> Option<tokio::fs::File> {
        let at = self.start.elapsed().as_secs_f64();
        let mut line = json!([(at * 1e6).round() / 1e6, kind, data]).to_string();
        line.push('\n');
        let over = st.written + line.len() as u64 > st.limit;
        if over {
            line =
                json!([at, "o", "\r\n[rrssh: recording stopped: limit reached]\r\n"]).to_string();
            line.push('\n');
        }
        let file = st.file.as_mut()?;
        let ok = file.write_all(line.as_bytes()).await.is_ok();
        st.written += line.len() as u64;
        if over || !ok { st.file.take() } else { None }
    }
}

/// `UNIX-SECONDS-USER-N.cast`, the user's name reduced to characters safe in a file name.
fn file_name(secs: u64, user: &str) -> String {
    let user: String = user
        .chars()
        .take(32)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let user = user.trim_start_matches('.');
    let n = MADE.fetch_add(1, Ordering::Relaxed);
    format!("{secs}-{user}-{n}.cast")
}

/// How many bytes at the end of `bytes` begin a UTF-8 character that is not complete yet.
fn incomplete_tail(bytes: &[u8]) -> usize {
    for back in 1..=3.min(bytes.len()) {
        let b = bytes[bytes.len() - back];
        if b & 0b1100_0000 == 0b1000_0000 {
            continue; // a continuation byte: look further back
        }
        let needs = match b {
            0b1100_0000..=0b1101_1111 => 2,
            0b1110_0000..=0b1110_1111 => 3,
            0b1111_0000..=0b1111_0111 => 4,
            _ => 1,
        };
        return if needs > back { back } else { 0 };
    }
    0
}

/// Whether `dir` is a directory recordings can be made in.
pub(crate) fn check_dir(dir: &Path) -> std::io::Result<()> {
    let meta = std::fs::metadata(dir)?;
    if meta.is_dir() {
        Ok(())
    } else {
        Err(std::io::Error::other("not a directory"))
    }
}

#[cfg(test)]
mod tests {
    use super::{file_name, incomplete_tail};

    #[test]
    fn a_character_cut_between_chunks_waits_for_its_end() {
        let e = "é".as_bytes(); // 2 bytes
        let euro = "€".as_bytes(); // 3 bytes
        assert_eq!(incomplete_tail(b"abc"), 0);
        assert_eq!(incomplete_tail(&e[..1]), 1);
        assert_eq!(incomplete_tail(e), 0);
        assert_eq!(incomplete_tail(&[b'a', euro[0], euro[1]]), 2);
        assert_eq!(incomplete_tail(euro), 0);
        assert_eq!(incomplete_tail("😀".as_bytes().split_last().unwrap().1), 3);
        // Not UTF-8 at all: written as it is (replaced), nothing held back.
        assert_eq!(incomplete_tail(&[0xff]), 0);
    }

    #[tokio::test]
    async fn a_recording_stops_at_its_limit_and_says_so() {
        let dir = std::env::temp_dir().join(format!("rrssh-cast-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let to = super::Recordings {
            dir: dir.clone(),
            limit: 2_000,
        };
        let peer = crate::Peer::new(crate::extract::PeerInfo::new("ada", "SHA256:x"));
        let (r, path) = super::Recorder::create(&to, &peer, None, (80, 24), Some("xterm"))
            .await
            .unwrap();
        for _ in 0..100 {
            r.output(&[b'x'; 100]).await;
        }
        let cast = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(cast.len() < 2_200, "{}", cast.len());
        assert!(
            cast.lines().last().unwrap().contains("limit reached"),
            "{cast}"
        );
        assert_eq!(
            cast.lines().filter(|l| l.contains("limit reached")).count(),
            1
        );
    }

    #[test]
    fn hostile_user_names_make_plain_file_names() {
        let name = file_name(1, "../../etc/passwd\n");
        assert!(name.starts_with("1-_.._etc_passwd_-"), "{name}");
        assert!(!name.contains('/'));
        assert!(file_name(1, &"x".repeat(500)).len() < 60);
    }
}
