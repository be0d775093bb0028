//! How `rrssh.connect` logs in, as `ssh` does: the ssh config's host aliases and jump hosts,
//! keys, the agent, a password or a prompt for one, and the host key policy.

use std::path::PathBuf;
use std::time::Duration;

use pyo3::prelude::*;
use rrssh::keys::HostKeyPolicy;
use rrssh::transport::{ClientBuilder, ConfigFile, ProxySetting, SshLogin};

use crate::errors::Error;

/// How to log in and check the server, as `rrssh.connect` parsed it.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub(crate) struct Login {
    host: String,
    /// `None`: the ssh config's `Port`, else 22.
    port: Option<u16>,
    /// `None`: the ssh config's `User`, else `$USER`.
    user: Option<String>,
    identity: Vec<String>,
    known_hosts: Option<String>,
    accept_new: bool,
    /// A pinned host key (an OpenSSH public key line) for the server itself.
    host_key: Option<String>,
    password: Option<String>,
    /// `ask_password(prompt) -> str | None`, called only when a password is needed.
    ask_password: Option<Py<PyAny>>,
    /// `None`: the agent when `SSH_AUTH_SOCK` is set.
    agent: Option<bool>,
    /// A file, `"none"`, or `None` for `~/.ssh/config`.
    ssh_config: Option<String>,
    jump: Option<String>,
    /// Only SSH (terminals and tunnels on any SSH server), no rrssh API.
    plain: bool,
    timeout: f64,
    /// Keepalive `(interval, misses)`.
    keepalive: Option<(f64, usize)>,
    /// A proxy URL, `"none"`, or `None` for the environment's.
    proxy: Option<String>,
    /// A PEM file of the authorities `wss://` trusts; `None`: the system's.
    tls_ca: Option<String>,
}

/// The port of an `ssh://` target without one, as for `ssh`.
const SSH_PORT: u16 = 22;

fn seconds(what: &str, s: f64) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Error::Value(format!(
                "{what} must be a positive number of seconds, not {s}"
            ))
        })
}

pub(crate) fn builder(login: Login) -> Result<ClientBuilder, Error> {
    let mut ssh = SshLogin::default();
    ssh.config = match login.ssh_config.as_deref() {
        None => ConfigFile::User,
        Some("none") => ConfigFile::None,
        Some(p) => ConfigFile::Path(PathBuf::from(p)),
    };
    ssh.identities = login.identity.iter().map(PathBuf::from).collect();
    ssh.agent = login.agent;
    ssh.jump = login.jump;
    ssh.known_hosts = login.known_hosts.map(PathBuf::from);
    ssh.accept_new = login.accept_new;
    ssh.proxy = match login.proxy.as_deref() {
        None => ProxySetting::FromEnv,
        Some("none") => ProxySetting::Direct,
        Some(url) => ProxySetting::Via(
            rrssh::proxy::Proxy::parse(url).map_err(|e| Error::Value(e.to_string()))?,
        ),
    };
    if let Some(ca) = &login.tls_ca {
        ssh.tls_roots = Some(
            rrssh::tls::TrustedRoots::from_pem_file(ca)
                .map_err(|e| Error::Value(format!("tls_ca: {e}")))?,
        );
    }
    let password = login.password;
    let ask = login.ask_password;
    let mut b = ssh
        .builder(
            &login.host,
            login.port,
            login.user.as_deref(),
            SSH_PORT,
            &|b| match (&password, &ask) {
                (Some(p), _) => b.password(p.clone()),
                (None, Some(ask)) => {
                    let ask = Python::attach(|py| ask.clone_ref(py));
                    b.ask_password(move |prompt| {
                        // On a blocking thread: the loop's thread keeps running meanwhile.
                        Python::attach(|py| {
                            ask.call1(py, (prompt,))
                                .and_then(|v| v.extract::<Option<String>>(py))
                                .unwrap_or_else(|e| {
                                    e.print(py);
                                    None
                                })
                        })
                    })
                }
                (None, None) => b,
            },
        )
        .map_err(|e| Error::Auth(e.to_string()))?;
    if let Some(k) = login.host_key {
        b = b.host_keys(HostKeyPolicy::Pinned(
            rrssh::keys::PublicKey::from_openssh(k.trim())
                .map_err(|e| Error::Value(format!("host_key is not an OpenSSH public key: {e}")))?,
        ));
    }
    if login.plain {
        b = b.plain();
    }
    if let Some((interval, misses)) = login.keepalive {
        b = b.keepalive(seconds("keepalive", interval)?, misses);
    }
    Ok(b.connect_timeout(seconds("timeout", login.timeout)?))
}
