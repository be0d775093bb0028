//! From a target and the login options to a client builder: the ssh config's host aliases,
//! the keys, the agent, the password, the jump host and the host key policy.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use rrssh::keys::HostKeyPolicy;
use rrssh::transport::{ClientBuilder, ConnectError};
use rrssh::{Client, keys::HostKeyError};
use ssh2_config::{ParseRule, SshConfig};

use crate::args::Login;
use crate::target::Target;

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

/// `~/…` expanded.
fn expand(p: &Path) -> PathBuf {
    match p.strip_prefix("~") {
        Ok(rest) => home().join(rest),
        Err(_) => p.to_owned(),
    }
}

/// The ssh config to read, if any.
fn ssh_config(login: &Login) -> Result<Option<SshConfig>, String> {
    let path = match &login.ssh_config {
        Some(p) if p.as_os_str() == "none" => return Ok(None),
        Some(p) => p.clone(),
        None => {
            let p = home().join(".ssh/config");
            if !p.exists() {
                return Ok(None);
            }
            p
        }
    };
    let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    SshConfig::default()
        .parse(
            &mut std::io::BufReader::new(file),
            ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS,
        )
        .map(Some)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// What the ssh config says of a host, as far as rrssh uses it.
#[derive(Debug, Default)]
struct HostEntry {
    host_name: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    identities: Vec<PathBuf>,
    jump: Option<String>,
    known_hosts: Option<PathBuf>,
}

fn lookup(config: Option<&SshConfig>, host: &str) -> HostEntry {
    let Some(config) = config else {
        return HostEntry::default();
    };
    let p = config.query(host);
    let known_hosts = p
        .unsupported_fields
        .iter()
        .chain(&p.ignored_fields)
        .find(|(k, _)| k.eq_ignore_ascii_case("userknownhostsfile"))
        .and_then(|(_, v)| v.first())
        .map(|f| expand(Path::new(f)));
    HostEntry {
        host_name: p.host_name,
        port: p.port,
        user: p.user,
        identities: p
            .identity_file
            .unwrap_or_default()
            .iter()
            .map(|f| expand(f))
            .collect(),
        jump: p
            .proxy_jump
            .and_then(|j| j.into_iter().next())
            .filter(|j| !j.eq_ignore_ascii_case("none")),
        known_hosts,
    }
}

/// A builder for `target` with `login`'s options. `default_port` applies when neither the
/// target nor the ssh config gives one.
fn resolve(
    login: &Login,
    config: Option<&SshConfig>,
    host: &str,
    port: Option<u16>,
    user: Option<&str>,
    default_port: u16,
    depth: usize,
) -> Result<ClientBuilder, String> {
    let entry = lookup(config, host);
    let name = entry.host_name.clone().unwrap_or_else(|| host.to_owned());
    let port = port.or(entry.port).unwrap_or(default_port);
    let addr = if name.contains(':') {
        format!("[{name}]:{port}")
    } else {
        format!("{name}:{port}")
    };
    let mut builder = Client::builder(addr);
    if let Some(u) = user.map(str::to_owned).or(entry.user.clone()) {
        builder = builder.user(u);
    }
    // Keys: -i, else the host's IdentityFile, else OpenSSH's defaults that exist.
    let explicit = !login.identity.is_empty() || !entry.identities.is_empty();
    let paths: Vec<PathBuf> = if !login.identity.is_empty() {
        login.identity.clone()
    } else if !entry.identities.is_empty() {
        entry.identities.clone()
    } else {
        ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|n| home().join(".ssh").join(n))
            .filter(|p| p.exists())
            .collect()
    };
    let mut keys = Vec::new();
    for path in &paths {
        match rrssh::keys::load_private_key(path, None) {
            Ok(key) => keys.push(key),
            Err(e) if explicit && !path.exists() => {
                return Err(format!("{}: {e}", path.display()));
            }
            Err(e) if explicit => return Err(e.to_string()),
            // A default key that cannot be read (encrypted): the agent may hold it.
            Err(e) => tracing::debug!(error = %e, "skipping {}", path.display()),
        }
    }
    builder = builder.identities(keys);
    if std::env::var_os("SSH_AUTH_SOCK").is_some() {
        builder = builder.agent();
    }
    builder = match password(login)? {
        Some(p) => builder.password(p),
        None if std::io::stdin().is_terminal() => builder
            .ask_password(|prompt| rpassword::prompt_password(format!("rrssh: {prompt}")).ok()),
        None => builder,
    };
    let known_hosts = login
        .known_hosts
        .clone()
        .or(entry.known_hosts.clone())
        .unwrap_or_else(|| home().join(".ssh/known_hosts"));
    builder = builder.host_keys(if login.accept_new {
        HostKeyPolicy::AcceptNew(known_hosts)
    } else {
        HostKeyPolicy::Strict(known_hosts)
    });
    let jump = if depth == 0 {
        login.jump.clone().or(entry.jump)
    } else {
        entry.jump
    };
    if let Some(jump) = jump {
        if depth >= 4 {
            return Err(format!("ProxyJump chain too long at {jump}"));
        }
        let jump = jump.strip_prefix("ssh://").unwrap_or(&jump).to_owned();
        let (juser, jhostport) = match jump.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, jump.as_str()),
        };
        let (jhost, jport) = match jhostport.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (
                h,
                Some(
                    p.parse::<u16>()
                        .map_err(|_| format!("bad jump host `{jump}`"))?,
                ),
            ),
            _ => (jhostport, None),
        };
        // A jump host is a plain SSH server: port 22 unless told, as for `ssh -J`.
        let via = resolve(login, config, jhost, jport, juser, 22, depth + 1)?;
        builder = builder.jump(via);
    }
    Ok(builder)
}

fn password(login: &Login) -> Result<Option<String>, String> {
    if let Some(path) = &login.password_file {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(Some(text.lines().next().unwrap_or_default().to_owned()));
    }
    Ok(std::env::var("RRSSH_PASSWORD").ok())
}

/// A client builder for the target.
pub(crate) fn builder(login: &Login, target: &Target) -> Result<ClientBuilder, String> {
    let config = ssh_config(login)?;
    resolve(
        login,
        config.as_ref(),
        &target.host,
        target.port,
        target.user.as_deref(),
        rrssh::transport::DEFAULT_PORT,
        0,
    )
}

/// Connects once (with the rrssh API unless `plain`).
pub(crate) async fn connect(login: &Login, target: &Target, plain: bool) -> Result<Client, String> {
    let mut b = builder(login, target)?;
    if plain {
        b = b.plain();
    }
    b.connect().await.map_err(explain)
}

/// A connection error, in the command line's terms.
pub(crate) fn explain(e: ConnectError) -> String {
    match e {
        ConnectError::HostKey(HostKeyError::Unknown { host, got, file }) => format!(
            "host key for {host} is not known ({got}); check it, then run again with \
             --accept-new to record it in {file}"
        ),
        ConnectError::NoIdentity => "no way to log in: no key in ~/.ssh (id_ed25519, id_ecdsa, \
             id_rsa), no ssh-agent, no password; give -i KEY or --password-file FILE"
            .to_owned(),
        e => e.to_string(),
    }
}
