//! From a target and the login options to a client builder: the ssh config's host aliases,
//! the keys, the agent, the password, the jump host and the host key policy.

use std::io::IsTerminal;

use rrssh::transport::{ClientBuilder, ConfigFile, ConnectError, ProxySetting, SshLogin};
use rrssh::{Client, keys::HostKeyError};

use crate::args::Login;
use crate::target::Target;

/// The login options, as the library's `ssh`-like login takes them.
fn ssh_login(login: &Login) -> Result<SshLogin, String> {
    let mut l = SshLogin::default();
    l.config = match &login.ssh_config {
        Some(p) if p.as_os_str() == "none" => ConfigFile::None,
        Some(p) => ConfigFile::Path(p.clone()),
        None => ConfigFile::User,
    };
    l.identities.clone_from(&login.identity);
    l.jump.clone_from(&login.jump);
    l.known_hosts.clone_from(&login.known_hosts);
    l.accept_new = login.accept_new;
    l.passphrase = passphrase(&login.identity);
    l.proxy = match login.proxy.as_deref() {
        None => ProxySetting::FromEnv,
        Some("none") => ProxySetting::Direct,
        Some(url) => ProxySetting::Via(rrssh::proxy::Proxy::parse(url).map_err(|e| e.to_string())?),
    };
    if let Some(ca) = &login.tls_ca {
        l.tls_roots = Some(
            rrssh::tls::TrustedRoots::from_pem_file(ca).map_err(|e| format!("--tls-ca: {e}"))?,
        );
    }
    Ok(l)
}

/// The passphrase of encrypted `-i` keys: `RRSSH_PASSPHRASE`, else asked on the terminal when
/// one of them is encrypted.
fn passphrase(identities: &[std::path::PathBuf]) -> Option<String> {
    if let Ok(p) = std::env::var("RRSSH_PASSPHRASE") {
        return Some(p);
    }
    let encrypted = identities.iter().find(|p| rrssh::keys::is_encrypted(p))?;
    if !std::io::stdin().is_terminal() {
        return None;
    }
    rpassword::prompt_password(format!("rrssh: passphrase for {}: ", encrypted.display())).ok()
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
    let password = password(login)?;
    let ask = password.is_none() && std::io::stdin().is_terminal();
    ssh_login(login)?
        .builder(
            target.web.as_deref().unwrap_or(&target.host),
            target.port,
            target.user.as_deref(),
            rrssh::transport::DEFAULT_PORT,
            &|b| match &password {
                Some(p) => b.password(p.clone()),
                None if ask => b.ask_password(|prompt| {
                    rpassword::prompt_password(format!("rrssh: {prompt}")).ok()
                }),
                None => b,
            },
        )
        .map_err(|e| e.to_string())
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
