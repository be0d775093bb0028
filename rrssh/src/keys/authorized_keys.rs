//! `authorized_keys` in OpenSSH's format: `[options] type base64 [comment]`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use russh::keys::PublicKey;

use crate::auth::Grants;
use crate::extract::PeerInfo;

/// One line of an `authorized_keys` file.
#[derive(Debug, Clone)]
pub struct AuthorizedKey {
    /// The key.
    pub key: PublicKey,
    /// The comment after the key, if any.
    pub comment: Option<String>,
    /// The options before the key (`from`, `rrssh-scopes`, …), by name; flags have no value.
    pub options: BTreeMap<String, Option<String>>,
    /// The line number, from 1.
    pub line: usize,
}

impl AuthorizedKey {
    /// Whether a caller from `addr` may use this key, by its `from="…"` option (OpenSSH
    /// patterns: `*` and `?` wildcards, `!` negation, comma-separated). No option: anyone.
    pub fn allows_from(&self, addr: Option<IpAddr>) -> bool {
        let Some(Some(patterns)) = self.options.get("from") else {
            return true;
        };
        let Some(addr) = addr else { return false };
        let text = addr.to_string();
        let mut allowed = false;
        for p in patterns.split(',').map(str::trim) {
            if let Some(neg) = p.strip_prefix('!') {
                if glob(neg, &text) {
                    return false;
                }
            } else if glob(p, &text) {
                allowed = true;
            }
        }
        allowed
    }

    /// The value of an option, if set with a value.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options.get(name).and_then(|v| v.as_deref())
    }

    /// The scopes granted by `rrssh-scopes="…"` (none without it).
    pub fn scopes(&self) -> Grants {
        self.grants("rrssh-scopes").unwrap_or_default()
    }

    /// The groups from `rrssh-groups="…"` (none without it).
    pub fn groups(&self) -> Grants {
        self.grants("rrssh-groups").unwrap_or_default()
    }

    /// The service names it may register, from `rrssh-services="…"` (`None`: any).
    pub fn services(&self) -> Option<Grants> {
        self.grants("rrssh-services")
    }

    /// The identity a connection with this key has.
    pub fn peer_info(&self, user: &str, fingerprint: String) -> PeerInfo {
        let mut info = PeerInfo::new(user, fingerprint)
            .scopes(self.scopes())
            .groups(self.groups());
        info.comment = self.comment.clone();
        info.services = self.services();
        info
    }

    fn grants(&self, option: &str) -> Option<Grants> {
        // Checked when the file was parsed.
        self.option(option).and_then(|v| Grants::parse(v).ok())
    }
}

/// The options that hold grant lists, checked at load time.
const GRANT_OPTIONS: [&str; 3] = ["rrssh-scopes", "rrssh-groups", "rrssh-services"];

/// `*` and `?` wildcard matching.
fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// A malformed `authorized_keys` line.
#[derive(Debug, thiserror::Error)]
#[error("{source_name} line {line}: {message}")]
pub struct AuthorizedKeysError {
    /// The file (or `<memory>`).
    pub source_name: String,
    /// The line number, from 1.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The keys allowed to connect, with their options and comments.
#[derive(Debug, Clone, Default)]
pub struct AuthorizedKeys {
    keys: Vec<AuthorizedKey>,
}

const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-dss",
];

/// Splits the options field at the first space outside quotes.
fn split_options(line: &str) -> Result<(&str, &str), String> {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => return Ok((&line[..i], line[i..].trim_start())),
            _ => {}
        }
    }
    Err(if quoted {
        "unterminated quote in the options".into()
    } else {
        "options but no key".into()
    })
}

fn parse_options(text: &str) -> Result<BTreeMap<String, Option<String>>, String> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let end_name = rest.find(['=', ',']).unwrap_or(rest.len());
        let name = rest[..end_name].to_ascii_lowercase();
        if name.is_empty()
            || !name.bytes().all(|b| {
                b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'@' || b == b'.'
            })
        {
            return Err(format!("bad option name `{}`", &rest[..end_name]));
        }
        rest = &rest[end_name..];
        let value = if let Some(r) = rest.strip_prefix('=') {
            let r = r
                .strip_prefix('"')
                .ok_or_else(|| format!("option `{name}` needs a quoted value"))?;
            let close = r
                .find('"')
                .ok_or_else(|| format!("option `{name}` has no closing quote"))?;
            rest = &r[close + 1..];
            Some(r[..close].to_owned())
        } else {
            None
        };
        out.insert(name, value);
        match rest.strip_prefix(',') {
            Some(r) => rest = r,
            None if rest.is_empty() => {}
            None => return Err(format!("expected `,` between options, found `{rest}`")),
        }
    }
    Ok(out)
}

impl AuthorizedKeys {
    /// Parses the text of an `authorized_keys` file; `source_name` names it in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, AuthorizedKeysError> {
        let mut keys = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let err = |message: String| AuthorizedKeysError {
                source_name: source_name.to_owned(),
                line: line_no,
                message,
            };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let first = line.split_whitespace().next().unwrap_or("");
            let (options, rest) = if KEY_TYPES.contains(&first) {
                (BTreeMap::new(), line)
            } else {
                let (opts, rest) = split_options(line).map_err(err)?;
                (parse_options(opts).map_err(err)?, rest)
            };
            for name in GRANT_OPTIONS {
                match options.get(name) {
                    None => {}
                    Some(None) => {
                        return Err(err(format!("`{name}` needs a value: {name}=\"a,b\"")));
                    }
                    Some(Some(v)) => {
                        Grants::parse(v).map_err(|e| err(format!("bad `{name}`: {e}")))?;
                    }
                }
            }
            for name in ["permitopen", "permitlisten"] {
                if let Some(v) = options.get(name) {
                    let v = v.as_deref().unwrap_or_default();
                    super::permit::PermitOpen::parse(v)
                        .map_err(|e| err(format!("bad `{name}`: {e}")))?;
                }
            }
            let mut parts = rest.splitn(3, char::is_whitespace);
            let ty = parts.next().unwrap_or("");
            if !KEY_TYPES.contains(&ty) {
                return Err(err(format!("unknown key type `{ty}`")));
            }
            let b64 = parts
                .next()
                .ok_or_else(|| err("key type but no key".into()))?;
            let key = russh::keys::parse_public_key_base64(b64)
                .map_err(|e| err(format!("bad key: {e}")))?;
            if key.algorithm().as_str() != ty {
                return Err(err(format!(
                    "key is {} but the line says {ty}",
                    key.algorithm().as_str()
                )));
            }
            let comment = parts
                .next()
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned);
            keys.push(AuthorizedKey {
                key,
                comment,
                options,
                line: line_no,
            });
        }
        Ok(Self { keys })
    }

    /// Reads and parses an `authorized_keys` file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, AuthorizedKeysError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| AuthorizedKeysError {
            source_name: name.clone(),
            line: 0,
            message: e.to_string(),
        })?;
        Self::parse(&text, &name)
    }

    /// A set holding these keys, with no options.
    pub fn from_keys(keys: impl IntoIterator<Item = PublicKey>) -> Self {
        Self {
            keys: keys
                .into_iter()
                .enumerate()
                .map(|(i, key)| AuthorizedKey {
                    comment: Some(key.comment().to_string()).filter(|c| !c.is_empty()),
                    key,
                    options: BTreeMap::new(),
                    line: i + 1,
                })
                .collect(),
        }
    }

    /// Adds a key.
    pub fn push(&mut self, key: AuthorizedKey) {
        self.keys.push(key);
    }

    /// The entry for this key usable from `addr`, if any.
    pub fn find(&self, key: &PublicKey, addr: Option<IpAddr>) -> Option<&AuthorizedKey> {
        self.keys
            .iter()
            .find(|k| k.key.key_data() == key.key_data() && k.allows_from(addr))
    }

    /// All entries.
    pub fn iter(&self) -> impl Iterator<Item = &AuthorizedKey> {
        self.keys.iter()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIGXHk8PsPKv0B9q8YqnCjvX7hy6Pr3oSRXSgpZCbkrLA";

    #[test]
    fn parses_options_comments_and_reports_lines() {
        let text = format!(
            "# comment\n\nssh-ed25519 {KEY} ada@laptop\nfrom=\"10.0.*,!10.0.0.9\",rrssh-scopes=\"billing:read,admin\",no-pty ssh-ed25519 {KEY} with options\n"
        );
        let keys = AuthorizedKeys::parse(&text, "ak").unwrap();
        assert_eq!(keys.len(), 2);
        let first = keys.iter().next().unwrap();
        assert_eq!(
            (first.line, first.comment.as_deref()),
            (3, Some("ada@laptop"))
        );
        let second = keys.iter().nth(1).unwrap();
        assert_eq!(second.option("rrssh-scopes"), Some("billing:read,admin"));
        assert!(second.options.contains_key("no-pty"));
        assert!(second.allows_from(Some("10.0.3.4".parse().unwrap())));
        assert!(!second.allows_from(Some("10.0.0.9".parse().unwrap())));
        assert!(!second.allows_from(Some("192.168.1.1".parse().unwrap())));
        assert!(!second.allows_from(None));
    }

    #[test]
    fn malformed_lines_name_the_line() {
        let e = AuthorizedKeys::parse(
            &format!("ssh-ed25519 {KEY}\nfrom=\"x ssh-ed25519 {KEY}\n"),
            "ak",
        )
        .unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().starts_with("ak line 2: "), "{e}");
        let e = AuthorizedKeys::parse("ssh-ed25519 !!!notbase64", "ak").unwrap_err();
        assert!(e.message.starts_with("bad key"), "{e}");
        let e = AuthorizedKeys::parse(&format!("ssh-rsa {KEY}"), "ak").unwrap_err();
        assert!(e.message.contains("but the line says ssh-rsa"), "{e}");
    }
}
