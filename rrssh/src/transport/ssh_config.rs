//! Logging in as `ssh` does: host aliases of the OpenSSH client config (`Host`, `HostName`,
//! `Port`, `User`, `IdentityFile`, `ProxyJump`, `UserKnownHostsFile`), OpenSSH's default keys,
//! the agent at `SSH_AUTH_SOCK` and `known_hosts`, into a [`ClientBuilder`]. The CLI and the
//! Python bindings log in through it.

use std::path::{Path, PathBuf};

use ssh2_config::{ParseRule, SshConfig};

use super::ClientBuilder;
use crate::keys::HostKeyPolicy;

/// Which OpenSSH client config to read.
#[derive(Debug, Clone, Default)]
pub enum ConfigFile {
    /// `~/.ssh/config` if it exists.
    #[default]
    User,
    /// None (`ssh -F none`).
    None,
    /// This file (`ssh -F FILE`); it must exist.
    Path(PathBuf),
}

/// How to log in, as `ssh`'s options give it; what is not given comes from the config's host
/// entry, then from OpenSSH's defaults.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SshLogin {
    /// The client config.
    pub config: ConfigFile,
    /// Keys to log in with (`-i`); none: the host's `IdentityFile`s, else those of
    /// `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa` that exist and can be read.
    pub identities: Vec<PathBuf>,
    /// Whether to ask the ssh-agent; `None`: when `SSH_AUTH_SOCK` is set.
    pub agent: Option<bool>,
    /// The jump host (`-J [user@]host[:port]`, an alias works too); none: the host's
    /// `ProxyJump`.
    pub jump: Option<String>,
    /// The known_hosts file; none: the host's `UserKnownHostsFile`, else
    /// `~/.ssh/known_hosts`. A jump host whose alias names a `UserKnownHostsFile` is checked
    /// against that file instead.
    pub known_hosts: Option<PathBuf>,
    /// Records the key of an unknown host (`StrictHostKeyChecking accept-new`).
    pub accept_new: bool,
    /// The passphrase of encrypted identities; without it, an encrypted key given with `-i`
    /// is an error and a default one is skipped (the agent may hold it).
    pub passphrase: Option<String>,
    /// The proxy to dial through; none: the environment's (see [`crate::proxy`]).
    pub proxy: ProxySetting,
    /// The authorities `wss://` targets are checked against (`--tls-ca`); none: the
    /// system's.
    #[cfg(feature = "websocket")]
    #[cfg_attr(docsrs, doc(cfg(feature = "websocket")))]
    pub tls_roots: Option<crate::tls::TrustedRoots>,
}

/// Which proxy to dial through.
#[derive(Debug, Clone, Default)]
pub enum ProxySetting {
    /// The one the environment names (`ALL_PROXY`, `HTTPS_PROXY`, `NO_PROXY`), if any.
    #[default]
    FromEnv,
    /// None, whatever the environment says.
    Direct,
    /// This one.
    Via(crate::proxy::Proxy),
}

/// Why the login could not be set up (a config or key file that cannot be read, a bad jump
/// host).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SshLoginError(String);

/// How deep `ProxyJump` chains may go.
const MAX_JUMPS: usize = 4;

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

/// The known_hosts file of a hop: for the host itself, the one given, else its alias's
/// `UserKnownHostsFile`; for a jump host (`depth` > 0), its alias's first, as `ssh` checks it in
/// the hop it runs for it; else `~/.ssh/known_hosts`.
fn known_hosts_file(given: Option<&Path>, entry: &HostEntry, depth: usize) -> PathBuf {
    let given = given.map(expand);
    if depth == 0 {
        given.or(entry.known_hosts.clone())
    } else {
        entry.known_hosts.clone().or(given)
    }
    .unwrap_or_else(|| home().join(".ssh/known_hosts"))
}

/// `[user@]host[:port]` of a jump host, `ssh://` allowed.
fn jump_target(jump: &str) -> Result<(Option<&str>, &str, Option<u16>), SshLoginError> {
    let jump = jump.strip_prefix("ssh://").unwrap_or(jump);
    let (user, hostport) = match jump.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, jump),
    };
    let bad = || SshLoginError(format!("bad jump host `{jump}`"));
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        // `[v6]` or `[v6]:port`.
        let (h, after) = rest.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (h, None),
            p => (
                h,
                Some(
                    p.strip_prefix(':')
                        .and_then(|p| p.parse::<u16>().ok())
                        .ok_or_else(bad)?,
                ),
            ),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p.parse::<u16>().map_err(|_| bad())?)),
            _ => (hostport, None),
        }
    };
    if host.is_empty() || host.starts_with('-') {
        return Err(bad());
    }
    Ok((user, host, port))
}

impl SshLogin {
    fn read_config(&self) -> Result<Option<SshConfig>, SshLoginError> {
        let path = match &self.config {
            ConfigFile::None => return Ok(None),
            ConfigFile::Path(p) => expand(p),
            ConfigFile::User => {
                let p = home().join(".ssh/config");
                if !p.exists() {
                    return Ok(None);
                }
                p
            }
        };
        let file = std::fs::File::open(&path)
            .map_err(|e| SshLoginError(format!("{}: {e}", path.display())))?;
        SshConfig::default()
            .parse(
                &mut std::io::BufReader::new(file),
                ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS,
            )
            .map(Some)
            .map_err(|e| SshLoginError(format!("{}: {e}", path.display())))
    }

    /// A builder for `host` (an alias of the config, or a name), with `port` and `user` when
    /// given (else the config's, else `default_port` and the builder's default user); a
    /// WebSocket URL (`wss://[USER@]HOST[:PORT][/PATH]`) is dialed as it is. `credentials` adds what the config cannot hold (a password, a prompt) to this host and to
    /// each jump host.
    pub fn builder(
        &self,
        host: &str,
        port: Option<u16>,
        user: Option<&str>,
        default_port: u16,
        credentials: &dyn Fn(ClientBuilder) -> ClientBuilder,
    ) -> Result<ClientBuilder, SshLoginError> {
        let config = self.read_config()?;
        self.resolve(
            config.as_ref(),
            host,
            port,
            user,
            default_port,
            credentials,
            0,
        )
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one hop of a jump chain: the target and the chain's state"
    )]
    fn resolve(
        &self,
        config: Option<&SshConfig>,
        host: &str,
        port: Option<u16>,
        user: Option<&str>,
        default_port: u16,
        credentials: &dyn Fn(ClientBuilder) -> ClientBuilder,
        depth: usize,
    ) -> Result<ClientBuilder, SshLoginError> {
        // A WebSocket URL is dialed as it is: it names no alias.
        let web = host.starts_with("ws://") || host.starts_with("wss://");
        let entry = if web {
            HostEntry::default()
        } else {
            lookup(config, host)
        };
        let name = entry.host_name.clone().unwrap_or_else(|| host.to_owned());
        let port = port.or(entry.port).unwrap_or(default_port);
        let addr = if web {
            name
        } else if name.contains(':') {
            format!("[{name}]:{port}")
        } else {
            format!("{name}:{port}")
        };
        let mut builder = crate::Client::builder(addr);
        if let Some(u) = user.map(str::to_owned).or(entry.user.clone()) {
            builder = builder.user(u);
        }
        let (keys, certificates) = self.keys(&entry)?;
        builder = builder.identities(keys);
        for cert in certificates {
            builder = builder.certificate(cert);
        }
        if self
            .agent
            .unwrap_or_else(|| std::env::var_os("SSH_AUTH_SOCK").is_some())
        {
            builder = builder.agent();
        }
        builder = credentials(builder);
        #[cfg(feature = "websocket")]
        if let Some(roots) = &self.tls_roots {
            builder = builder.tls_roots(roots.clone());
        }
        // Only the hop that dials TCP (the last jump host, or the host itself) uses it.
        builder = match &self.proxy {
            ProxySetting::FromEnv => builder,
            ProxySetting::Direct => builder.no_proxy(),
            ProxySetting::Via(p) => builder.proxy(p.clone()),
        };
        let known_hosts = known_hosts_file(self.known_hosts.as_deref(), &entry, depth);
        builder = builder.host_keys(if self.accept_new {
            HostKeyPolicy::AcceptNew(known_hosts)
        } else {
            HostKeyPolicy::Strict(known_hosts)
        });
        let jump = if depth == 0 {
            self.jump.clone().or(entry.jump)
        } else {
            entry.jump
        };
        if let Some(jump) = jump {
            if depth >= MAX_JUMPS {
                return Err(SshLoginError(format!("ProxyJump chain too long at {jump}")));
            }
            let (juser, jhost, jport) = jump_target(&jump)?;
            // A jump host is a plain SSH server: port 22 unless told, as for `ssh -J`.
            let via = self.resolve(config, jhost, jport, juser, 22, credentials, depth + 1)?;
            builder = builder.jump(via);
        }
        Ok(builder)
    }

    /// The keys: given ones, else the host's, else OpenSSH's defaults that can be read; and
    /// the certificates found beside them (`KEY-cert.pub`, as `ssh` finds them).
    #[allow(clippy::type_complexity, reason = "keys and certificates, each a list")]
    fn keys(
        &self,
        entry: &HostEntry,
    ) -> Result<(Vec<crate::keys::PrivateKey>, Vec<crate::keys::Certificate>), SshLoginError> {
        let explicit = !self.identities.is_empty() || !entry.identities.is_empty();
        let paths: Vec<PathBuf> = if !self.identities.is_empty() {
            self.identities.iter().map(|p| expand(p)).collect()
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
        let mut certificates = Vec::new();
        for path in &paths {
            let mut cert_path = path.clone().into_os_string();
            cert_path.push("-cert.pub");
            let cert_path = PathBuf::from(cert_path);
            if cert_path.exists() {
                let cert = crate::keys::Certificate::read_file(&cert_path).map_err(|e| {
                    SshLoginError(format!(
                        "cannot read the certificate {}: {e}",
                        cert_path.display()
                    ))
                })?;
                certificates.push(cert);
            }
            match crate::keys::load_private_key(path, self.passphrase.as_deref()) {
                Ok(key) => keys.push(key),
                Err(e) if explicit => {
                    return Err(SshLoginError(format!("cannot read the key {e}")));
                }
                // A default key that cannot be read (encrypted): the agent may hold it.
                Err(e) => tracing::debug!(error = %e, "skipping {}", path.display()),
            }
        }
        Ok((keys, certificates))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> SshConfig {
        SshConfig::default()
            .parse(
                &mut text.as_bytes(),
                ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS,
            )
            .unwrap()
    }

    #[test]
    fn an_alias_gives_its_host_port_user_jump_and_known_hosts() {
        let c = parse(
            "Host api\n  HostName 10.0.0.7\n  Port 2222\n  User ada\n  ProxyJump bastion\n  \
             UserKnownHostsFile /tmp/kh\n",
        );
        let e = lookup(Some(&c), "api");
        assert_eq!(e.host_name.as_deref(), Some("10.0.0.7"));
        assert_eq!(e.port, Some(2222));
        assert_eq!(e.user.as_deref(), Some("ada"));
        assert_eq!(e.jump.as_deref(), Some("bastion"));
        assert_eq!(e.known_hosts, Some(PathBuf::from("/tmp/kh")));
        assert!(lookup(Some(&c), "other").host_name.is_none());
    }

    #[test]
    fn a_jump_host_is_checked_against_its_aliass_known_hosts_file() {
        let c = parse("Host bastion\n  UserKnownHostsFile /tmp/bastion_kh\nHost plain\n");
        let given = Some(Path::new("/tmp/given_kh"));
        let bastion = lookup(Some(&c), "bastion");
        let plain = lookup(Some(&c), "plain");
        assert_eq!(
            known_hosts_file(given, &bastion, 0),
            PathBuf::from("/tmp/given_kh")
        );
        assert_eq!(
            known_hosts_file(given, &bastion, 1),
            PathBuf::from("/tmp/bastion_kh")
        );
        assert_eq!(
            known_hosts_file(given, &plain, 1),
            PathBuf::from("/tmp/given_kh")
        );
        assert_eq!(
            known_hosts_file(None, &bastion, 0),
            PathBuf::from("/tmp/bastion_kh")
        );
    }

    #[test]
    fn proxy_jump_none_means_no_jump() {
        let c = parse("Host api\n  ProxyJump none\n");
        assert!(lookup(Some(&c), "api").jump.is_none());
    }

    #[test]
    fn jump_targets_parse_as_ssh_takes_them() {
        assert_eq!(jump_target("bastion").unwrap(), (None, "bastion", None));
        assert_eq!(
            jump_target("ssh://ops@bastion:2200").unwrap(),
            (Some("ops"), "bastion", Some(2200))
        );
        assert_eq!(jump_target("[::1]").unwrap(), (None, "::1", None));
        assert_eq!(
            jump_target("[::1]:2200").unwrap(),
            (None, "::1", Some(2200))
        );
        assert!(jump_target("[::1]x").is_err());
        assert!(jump_target("bastion:port").is_err());
        assert!(jump_target("-oProxyCommand=x").is_err());
        assert!(jump_target("ops@").is_err());
    }

    #[test]
    fn a_missing_given_key_is_an_error_naming_it() {
        let login = SshLogin {
            config: ConfigFile::None,
            identities: vec![PathBuf::from("/nonexistent/key")],
            ..SshLogin::default()
        };
        let err = login
            .builder("h", None, None, 22, &|b| b)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/key"), "{err}");
    }

    #[test]
    fn a_missing_given_config_is_an_error_naming_it() {
        let login = SshLogin {
            config: ConfigFile::Path(PathBuf::from("/nonexistent/ssh_config")),
            ..SshLogin::default()
        };
        let err = login
            .builder("h", None, None, 22, &|b| b)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/ssh_config"), "{err}");
    }
}
