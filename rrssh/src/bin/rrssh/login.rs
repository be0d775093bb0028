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

/// Which port a target without one means: rrssh's (the API) or SSH's (any SSH server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialing {
    /// The rrssh API: port 8022 unless told.
    Api,
    /// A terminal or tunnel, which any SSH server serves: port 22 unless told, as `ssh`.
    AnySsh,
}

/// A client builder for the target.
pub(crate) fn builder(
    login: &Login,
    target: &Target,
    dialing: Dialing,
) -> Result<ClientBuilder, String> {
    let password = password(login)?;
    let ask = password.is_none() && std::io::stdin().is_terminal();
    if target.web.is_some() && (login.port.is_some() || login.user.is_some()) {
        return Err(format!(
            "-p and -l do not apply to {target}: give the user and port in the URL"
        ));
    }
    // As `ssh`: -p and -l before the target's own, the target's before the config's.
    let port = login.port.or(target.port);
    let user = login.user.as_deref().or(target.user.as_deref());
    let default_port = match dialing {
        Dialing::Api => rrssh::transport::DEFAULT_PORT,
        Dialing::AnySsh => 22,
    };
    ssh_login(login)?
        .builder(
            target.web.as_deref().unwrap_or(&target.host),
            port,
            user,
            default_port,
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

/// Connects once (with the rrssh API, or plain SSH for a terminal or tunnel).
pub(crate) async fn connect(
    login: &Login,
    target: &Target,
    dialing: Dialing,
) -> Result<Client, String> {
    let mut b = builder(login, target, dialing)?;
    if dialing == Dialing::AnySsh {
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

/// The first connection of a command that runs until stopped (`forward`, `gateway`,
/// `webshell`, `peers --watch`): tried again with the reconnection backoff while the server
/// cannot be reached (it may not be up yet), until Ctrl-C; what the server refuses (a host key,
/// a login, no rrssh API) ends the command at once.
pub(crate) async fn first_connection(
    login: &Login,
    target: &Target,
    dialing: Dialing,
    backoff: rrssh::client::Backoff,
) -> Result<Client, String> {
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut attempt = 0u32;
    loop {
        let mut b = builder(login, target, dialing)?;
        if dialing == Dialing::AnySsh {
            b = b.plain();
        }
        let e = tokio::select! {
            r = b.connect() => match r {
                Ok(client) => return Ok(client),
                Err(e) if e.is_transient() => e,
                Err(e) => return Err(explain(e)),
            },
            _ = &mut ctrl_c => return Err(format!("stopped before {target} answered")),
        };
        let wait = backoff.delay(attempt);
        tracing::warn!(
            target: "rrssh::cli",
            "{e}; trying again in {:.1}s (Ctrl-C stops)",
            wait.as_secs_f64()
        );
        attempt = attempt.saturating_add(1);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = &mut ctrl_c => return Err(format!("stopped before {target} answered")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Dialing, Login, builder};
    use crate::target::Target;
    use clap::Parser;

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        login: Login,
    }

    /// Where and as whom the builder for `target` with `args` dials.
    fn dials(target: &str, args: &[&str], dialing: Dialing) -> String {
        let mut argv = vec!["t", "-F", "none"];
        argv.extend_from_slice(args);
        let login = Args::parse_from(argv).login;
        let b = builder(&login, &Target::parse(target).unwrap(), dialing).unwrap();
        let debug = format!("{b:?}");
        let field = |name: &str| {
            let start = debug.find(&format!("{name}: \"")).unwrap() + name.len() + 3;
            debug[start..].split('"').next().unwrap().to_owned()
        };
        format!("{}@{}", field("user"), field("addr"))
    }

    #[test]
    fn ports_and_users_as_ssh_takes_them() {
        // No port anywhere: SSH's for terminals and tunnels, rrssh's for the API.
        assert_eq!(dials("ada@db1", &[], Dialing::AnySsh), "ada@db1:22");
        assert_eq!(dials("ada@db1", &[], Dialing::Api), "ada@db1:8022");
        // The target's port, and -p and -l before the target's own, as `ssh`.
        assert_eq!(dials("ada@db1:2222", &[], Dialing::AnySsh), "ada@db1:2222");
        assert_eq!(
            dials("ada@db1:2222", &["-p", "2200", "-l", "bob"], Dialing::Api),
            "bob@db1:2200"
        );
        assert!(dials("ssh://[::1]", &[], Dialing::AnySsh).ends_with("@[::1]:22"));
    }
}
