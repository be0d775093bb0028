//! `authorized_keys` in OpenSSH's format (`[options] type base64 [comment]`), with sshd(8)'s
//! semantics for the options rrssh acts on; see [`AuthorizedKeys`].

mod certificate;
mod expiry;
mod from;
mod options;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::path::Path;
use std::time::SystemTime;

use russh::keys::PublicKey;

pub use self::certificate::GRANTS as CERTIFICATE_GRANTS;
use self::from::FromPatterns;
pub(crate) use self::from::canonical as canonical_addr;
pub use self::options::KeyOptions;
use crate::auth::Grants;
use crate::extract::PeerInfo;

/// One line of an `authorized_keys` file.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuthorizedKey {
    /// The key.
    pub key: PublicKey,
    /// The comment after the key, if any.
    pub comment: Option<String>,
    /// The options before the key, in order.
    pub options: KeyOptions,
    /// The line number, from 1.
    pub line: usize,
    from: Option<FromPatterns>,
    expires: Option<SystemTime>,
    users: Option<Vec<String>>,
}

/// Why no line of an [`AuthorizedKeys`] lets a key in; the server logs it, the client only
/// learns that the key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyRefusal {
    /// The key is not listed.
    NotListed,
    /// Every line with the key has a `from=` that does not admit the address.
    From,
    /// Every line with the key has an `expiry-time` in the past.
    Expired,
    /// The key may not log in under this user name.
    User,
}

impl std::fmt::Display for KeyRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotListed => "the key is not authorized",
            Self::From => "the key's from= does not admit this address",
            Self::Expired => "the key's expiry-time has passed",
            Self::User => "the key is not bound to this user name",
        })
    }
}

impl AuthorizedKey {
    /// A line for `key` with no options.
    pub fn new(key: PublicKey) -> Self {
        Self {
            comment: Some(key.comment().to_string()).filter(|c| !c.is_empty()),
            key,
            options: KeyOptions::default(),
            line: 0,
            from: None,
            expires: None,
            users: None,
        }
    }

    /// Whether a caller from `addr` may use this key, by its `from="…"` option (sshd's
    /// patterns: addresses, CIDR blocks, `*`/`?` wildcards, `!` negation). No option: anyone.
    pub fn allows_from(&self, addr: Option<IpAddr>) -> bool {
        match (&self.from, addr) {
            (None, _) => true,
            (Some(p), Some(addr)) => p.admits(addr),
            (Some(_), None) => false,
        }
    }

    /// Whether the key has expired at `now` (`expiry-time="…"`).
    pub fn expired_at(&self, now: SystemTime) -> bool {
        self.expires.is_some_and(|t| now >= t)
    }

    /// The user names this line names in `rrssh-users="…"`, if it has the option.
    pub fn users(&self) -> Option<&[String]> {
        self.users.as_deref()
    }

    /// Whether the key may log in as `user`: the line's `rrssh-users` lists the name (or `*`),
    /// or, without that option, `owner` (the account the file belongs to) is `user`.
    pub fn binds(&self, user: &str, owner: Option<&str>) -> bool {
        match &self.users {
            Some(list) => list.iter().any(|u| u == "*" || u == user),
            None => owner == Some(user),
        }
    }

    /// The forced command (`command="…"`), if any.
    pub fn forced_command(&self) -> Option<&str> {
        self.options.get("command")
    }

    /// The scope that grants a key a terminal on a server that serves them:
    /// `rrssh-scopes="terminal"`. Only the name itself grants it, never a wildcard (`*`,
    /// `term*`), so a key granted every API scope is not granted a shell with them.
    pub const TERMINAL_SCOPE: &'static str = "terminal";

    /// Whether the line allows a pseudo-terminal, as sshd reads it: `no-pty` and `restrict`
    /// forbid one, `pty` permits it again, and the last of them decides (see
    /// [`KeyOptions::pty`]). Without any of them, a pseudo-terminal is allowed.
    pub fn allows_pty(&self) -> bool {
        self.options.pty() != Some(false)
    }

    /// Whether the line grants shells and commands: an explicit `pty` (the last of
    /// `restrict`, `no-pty` and `pty`), or the scope [`TERMINAL_SCOPE`](Self::TERMINAL_SCOPE)
    /// in `rrssh-scopes`. They run in a pseudo-terminal when the client asks for one and the
    /// line [allows one](Self::allows_pty), else on pipes (as sshd runs a `no-pty` key's
    /// commands). An rrssh server serves them only to keys granted them, unless its
    /// `Terminal::for_every_key` says otherwise.
    pub fn grants_commands(&self) -> bool {
        self.options.pty() == Some(true) || self.has_terminal_scope()
    }

    /// Whether the line grants a terminal: [shells and commands](Self::grants_commands) in a
    /// pseudo-terminal, which the line [allows](Self::allows_pty).
    pub fn grants_terminal(&self) -> bool {
        self.grants_commands() && self.allows_pty()
    }

    fn has_terminal_scope(&self) -> bool {
        self.scopes()
            .names()
            .iter()
            .any(|s| s == Self::TERMINAL_SCOPE)
    }

    /// The value of an option, if set with a value (the first one if it repeats).
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options.get(name)
    }

    /// The scopes granted by `rrssh-scopes="…"` (none without it).
    pub fn scopes(&self) -> Grants {
        self.grants("rrssh-scopes").unwrap_or_default()
    }

    /// The groups from `rrssh-groups="…"` (none without it).
    pub fn groups(&self) -> Grants {
        self.grants("rrssh-groups").unwrap_or_default()
    }

    /// The service names it may register, from `rrssh-services="…"` (`None`: not listed).
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

    fn from_line(line: &str) -> Result<Self, String> {
        let first = line.split_whitespace().next().unwrap_or("");
        let (opts, rest) = if KEY_TYPES.contains(&first) {
            (KeyOptions::default(), line)
        } else {
            let (opts, rest) = options::split(line)?;
            (options::parse(opts)?, rest)
        };
        for name in options::RRSSH_VALUED {
            if let Some(v) = opts.get(name).filter(|_| *name != "rrssh-users") {
                Grants::parse(v).map_err(|e| format!("bad `{name}`: {e}"))?;
            }
        }
        for name in ["permitopen", "permitlisten"] {
            for v in opts.all(name) {
                super::permit::PermitOpen::parse(v).map_err(|e| format!("bad `{name}`: {e}"))?;
            }
        }
        let from = opts.get("from").map(FromPatterns::parse).transpose()?;
        // sshd keeps the earliest of repeated expiry times.
        let expires = opts
            .all("expiry-time")
            .map(expiry::parse)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .min();
        let users = opts.get("rrssh-users").map(parse_users).transpose()?;
        let mut parts = rest.splitn(3, char::is_whitespace);
        let ty = parts.next().unwrap_or("");
        if !KEY_TYPES.contains(&ty) {
            return Err(format!("unknown key type `{ty}`"));
        }
        let b64 = parts.next().ok_or("key type but no key")?;
        let key = russh::keys::parse_public_key_base64(b64).map_err(|e| format!("bad key: {e}"))?;
        if key.algorithm().as_str() != ty {
            return Err(format!(
                "key is {} but the line says {ty}",
                key.algorithm().as_str()
            ));
        }
        let comment = parts
            .next()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        Ok(Self {
            key,
            comment,
            options: opts,
            line: 0,
            from,
            expires,
            users,
        })
    }
}

fn parse_users(list: &str) -> Result<Vec<String>, String> {
    let users: Vec<String> = list.split(',').map(str::trim).map(str::to_owned).collect();
    for u in &users {
        if u != "*" && !valid_user_name(u) {
            return Err(format!(
                "bad user name `{u}` in rrssh-users: letters, digits, `.`, `_`, `-`, at most 64, not starting with `-` or `.`"
            ));
        }
    }
    Ok(users)
}

/// Whether `name` is a user name rrssh accepts at login: 1 to 64 of `A-Z a-z 0-9 . _ -`, not
/// starting with `-` or `.` (so it is safe in a file path and on a command line).
pub fn valid_user_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with(['-', '.'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A malformed `authorized_keys` line, or a file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}{}: {message}", if *line == 0 { String::new() } else { format!(" line {line}") })]
pub struct AuthorizedKeysError {
    /// The file (or `<memory>`).
    pub source_name: String,
    /// The line number, from 1; 0 when the file itself is at fault (missing, too large).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The keys allowed to connect, with their options and comments.
///
/// A key logs in only under a user name it is **bound** to, as in OpenSSH where each account
/// has its own `authorized_keys`: the names in its line's `rrssh-users="…"` (`*` for any name,
/// an explicit choice), else the account the whole file belongs to
/// ([`owned_by`](Self::owned_by)). A server refuses to start with a key bound to no name.
///
/// Options read as sshd(8) reads them: `from=` (addresses, CIDR blocks, wildcards, `!`, IPv4
/// clients of an IPv6 listener matched as IPv4), `expiry-time=`, `command=` (forced, with
/// `SSH_ORIGINAL_COMMAND`), `no-pty`, `no-port-forwarding`, `restrict` and the options that
/// re-enable what it turns off, repeated `permitopen=`/`permitlisten=`, and `cert-authority`
/// lines with `principals=` for OpenSSH user certificates
/// ([`authorize_certificate`](Self::authorize_certificate)). Unknown options are errors, never
/// ignored.
#[derive(Debug, Clone, Default)]
pub struct AuthorizedKeys {
    keys: Vec<AuthorizedKey>,
    owner: Option<String>,
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

/// The largest `authorized_keys` file read (sshd has no limit; a file this size holds some
/// 10,000 keys).
pub const MAX_FILE: u64 = 4 << 20;

impl AuthorizedKeys {
    /// Parses the text of an `authorized_keys` file; `source_name` names it in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, AuthorizedKeysError> {
        let mut keys = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut key =
                AuthorizedKey::from_line(line).map_err(|message| AuthorizedKeysError {
                    source_name: source_name.to_owned(),
                    line: i + 1,
                    message,
                })?;
            key.line = i + 1;
            keys.push(key);
        }
        Ok(Self { keys, owner: None })
    }

    /// Reads and parses an `authorized_keys` file (at most [`MAX_FILE`] bytes).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, AuthorizedKeysError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let err = |message: String| AuthorizedKeysError {
            source_name: name.clone(),
            line: 0,
            message,
        };
        let len = std::fs::metadata(path)
            .map_err(|e| err(e.to_string()))?
            .len();
        if len > MAX_FILE {
            return Err(err(format!("{len} bytes, over the limit of {MAX_FILE}")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        Self::parse(&text, &name)
    }

    /// A set holding these keys, with no options.
    pub fn from_keys(keys: impl IntoIterator<Item = PublicKey>) -> Self {
        Self {
            keys: keys
                .into_iter()
                .enumerate()
                .map(|(i, key)| AuthorizedKey {
                    line: i + 1,
                    ..AuthorizedKey::new(key)
                })
                .collect(),
            owner: None,
        }
    }

    /// The account this file belongs to: its keys without `rrssh-users` log in as `user` only
    /// (as the keys in `~user/.ssh/authorized_keys` do under sshd).
    #[must_use]
    pub fn owned_by(mut self, user: impl Into<String>) -> Self {
        self.owner = Some(user.into());
        self
    }

    /// The account set by [`owned_by`](Self::owned_by).
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// Adds a key.
    pub fn push(&mut self, key: AuthorizedKey) {
        self.keys.push(key);
    }

    /// The first line for `key` that lets it log in as `user` from `addr` at `now` (sshd reads
    /// on past a line whose options refuse the login); else why not.
    pub fn authorize(
        &self,
        key: &PublicKey,
        user: &str,
        addr: Option<IpAddr>,
        now: SystemTime,
    ) -> Result<&AuthorizedKey, KeyRefusal> {
        let mut why = KeyRefusal::NotListed;
        // A CA's key lets certificates in, not itself (as under sshd).
        for k in self
            .keys
            .iter()
            .filter(|k| k.key.key_data() == key.key_data() && !k.options.has("cert-authority"))
        {
            if !k.binds(user, self.owner.as_deref()) {
                why = KeyRefusal::User;
            } else if !k.allows_from(addr) {
                why = KeyRefusal::From;
            } else if k.expired_at(now) {
                why = KeyRefusal::Expired;
            } else {
                return Ok(k);
            }
        }
        Err(why)
    }

    /// The first line bound to no user name (no `rrssh-users` in a file with no owner): such
    /// a key could never log in, so a server refuses to start with it.
    pub fn unbound(&self) -> Option<&AuthorizedKey> {
        if self.owner.is_some() {
            return None;
        }
        self.keys.iter().find(|k| k.users.is_none())
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
