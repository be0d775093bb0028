//! Reading `known_hosts` as ssh(1) does: markers (`@revoked`, `@cert-authority`), host pattern
//! lists with wildcards and negation, hashed names, `[host]:port`.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::PublicKey;
use sha1::Sha1;

use crate::keys::pattern::glob;

/// What a file says about one host.
#[derive(Debug, Default)]
pub(super) struct Known {
    /// Keys on record for the host: (line, key).
    pub(super) keys: Vec<(usize, PublicKey)>,
    /// Revoked keys (for any host their line matches): (line, key).
    pub(super) revoked: Vec<(usize, PublicKey)>,
    /// Authorities whose host certificates the host may show (`@cert-authority`): (line, key).
    pub(super) authorities: Vec<(usize, PublicKey)>,
}

/// The name ssh(1) looks a host up by: `host`, or `[host]:port` off port 22.
pub(super) fn lookup_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Reads every line of `text` that applies to `name`. Malformed lines are skipped, as ssh does.
pub(super) fn lookup(text: &str, name: &str) -> Known {
    let mut known = Known::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let Some(mut first) = fields.next() else {
            continue;
        };
        let marker = first.strip_prefix('@');
        if marker.is_some() {
            match fields.next() {
                Some(f) => first = f,
                None => continue,
            }
        }
        let (Some(_ty), Some(b64)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !hosts_match(first, name) {
            continue;
        }
        let Ok(key) = russh::keys::parse_public_key_base64(b64) else {
            continue;
        };
        match marker {
            None => known.keys.push((i + 1, key)),
            Some("revoked") => known.revoked.push((i + 1, key)),
            Some("cert-authority") => known.authorities.push((i + 1, key)),
            // Unknown markers: the line is skipped, as ssh skips it.
            Some(_) => {}
        }
    }
    known
}

/// Whether a comma-separated pattern list matches `name`: some pattern matches and no negated
/// one does.
fn hosts_match(patterns: &str, name: &str) -> bool {
    let mut hit = false;
    for p in patterns.split(',') {
        let (neg, p) = match p.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, p),
        };
        let m = if p.starts_with("|1|") {
            hashed_match(p, name)
        } else {
            glob(p, name)
        };
        if m && neg {
            return false;
        }
        hit |= m;
    }
    hit
}

fn hashed_match(entry: &str, name: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut parts = entry.split('|').skip(2);
    let (Some(Ok(salt)), Some(Ok(hash))) = (
        parts.next().map(|p| b64.decode(p)),
        parts.next().map(|p| b64.decode(p)),
    ) else {
        return false;
    };
    Hmac::<Sha1>::new_from_slice(&salt)
        .map(|mac| mac.chain_update(name).verify_slice(&hash).is_ok())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIGXHk8PsPKv0B9q8YqnCjvX7hy6Pr3oSRXSgpZCbkrLA";

    #[test]
    fn wildcards_negation_markers_and_ports() {
        let text = format!(
            "*.example.com,!evil.example.com ssh-ed25519 {K1}\n\
             @revoked * ssh-ed25519 {K1}\n\
             [10.0.0.?]:2222 ssh-ed25519 {K1}\n\
             @cert-authority * ssh-ed25519 {K1}\n\
             garbage\n"
        );
        let k = lookup(&text, "api.example.com");
        assert_eq!((k.keys.len(), k.revoked.len()), (1, 1));
        let k = lookup(&text, "evil.example.com");
        assert_eq!((k.keys.len(), k.revoked.len()), (0, 1));
        let k = lookup(&text, &lookup_name("10.0.0.7", 2222));
        assert_eq!(k.keys.len(), 1);
        assert_eq!(lookup(&text, &lookup_name("10.0.0.7", 22)).keys.len(), 0);
    }

    #[test]
    fn hashed_names() {
        // `ssh-keygen -H` of "[127.0.0.1]:2222" with this salt.
        let salt = [7u8; 20];
        let mac = Hmac::<Sha1>::new_from_slice(&salt)
            .unwrap()
            .chain_update("[127.0.0.1]:2222")
            .finalize()
            .into_bytes();
        let b64 = base64::engine::general_purpose::STANDARD;
        let entry = format!("|1|{}|{}", b64.encode(salt), b64.encode(mac));
        let text = format!("{entry} ssh-ed25519 {K1}\n");
        assert_eq!(lookup(&text, "[127.0.0.1]:2222").keys.len(), 1);
        assert_eq!(lookup(&text, "[127.0.0.1]:2223").keys.len(), 0);
    }
}
