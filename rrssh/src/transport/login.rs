//! Logging in: the ways a client proves who it is, tried in the order `ssh` tries them: its
//! keys, the keys an ssh-agent holds, then a password (for `password` and for the prompts of
//! `keyboard-interactive`). A password is asked for only when the keys were refused and the
//! server offers a password method, and it is never logged.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use russh::MethodKind;
use russh::client::{AuthResult, KeyboardInteractiveAuthResponse};
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{Certificate, PrivateKey, PrivateKeyWithHashAlg};

use super::ConnectError;
use super::ssh_handler::ClientHandler;
use crate::keys::fingerprint;

/// Asks for a password: given the server's prompt, returns the answer (`None` gives up).
pub type PasswordPrompt = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where an ssh-agent is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AgentSocket {
    /// `SSH_AUTH_SOCK`, if set.
    Env,
    /// This socket.
    Path(PathBuf),
}

/// Where a password comes from.
#[derive(Clone)]
pub(super) enum Password {
    Fixed(Arc<str>),
    Ask(PasswordPrompt),
}

/// How a client logs in.
#[derive(Clone, Default)]
pub(super) struct Credentials {
    pub(super) keys: Vec<Arc<PrivateKey>>,
    /// OpenSSH certificates of some of those keys, tried before the keys themselves.
    pub(super) certificates: Vec<Certificate>,
    /// The same, kept renewed by the connections (`ClientBuilder::renew_certificates`).
    pub(super) renewed: Option<Arc<std::sync::Mutex<Vec<Certificate>>>>,
    pub(super) agent: Option<AgentSocket>,
    pub(super) password: Option<Password>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field(
                "keys",
                &self
                    .keys
                    .iter()
                    .map(|k| fingerprint(k.public_key()))
                    .collect::<Vec<_>>(),
            )
            .field(
                "certificates",
                &self
                    .certificates
                    .iter()
                    .map(Certificate::key_id)
                    .collect::<Vec<_>>(),
            )
            .field("agent", &self.agent)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Credentials {
    pub(super) fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.agent.is_none() && self.password.is_none()
    }
}

type Session = russh::client::Handle<ClientHandler>;

/// What the server still offers after a refusal (`None`: it did not say).
fn offers(result: &AuthResult, kind: MethodKind) -> bool {
    match result {
        AuthResult::Success => false,
        AuthResult::Failure {
            remaining_methods, ..
        } => remaining_methods.is_empty() || remaining_methods.contains(&kind),
    }
}

/// Logs in as `user`; on refusal says what was tried.
pub(super) async fn login(
    ssh: &mut Session,
    user: &str,
    creds: &Credentials,
) -> Result<(), ConnectError> {
    let mut tried = Vec::new();
    let mut last = AuthResult::Failure {
        remaining_methods: russh::MethodSet::empty(),
        partial_success: false,
    };
    // A certificate first, as `ssh` offers `id-cert.pub` before `id`.
    let certificates = match &creds.renewed {
        Some(cell) => cell.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        None => creds.certificates.clone(),
    };
    for cert in &certificates {
        let Some(key) = creds
            .keys
            .iter()
            .find(|k| k.public_key().key_data() == cert.public_key())
        else {
            continue;
        };
        tried.push(format!("certificate {}", cert.key_id()));
        last = ssh
            .authenticate_openssh_cert(user, key.clone(), cert.clone())
            .await?;
        if last.success() {
            return Ok(());
        }
    }
    for key in &creds.keys {
        let hash = if key.algorithm().is_rsa() {
            ssh.best_supported_rsa_hash().await?.flatten()
        } else {
            None
        };
        tried.push(format!("key {}", fingerprint(key.public_key())));
        last = ssh
            .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key.clone(), hash))
            .await?;
        if last.success() {
            return Ok(());
        }
    }
    if let Some(agent) = &creds.agent {
        match agent_login(ssh, user, agent, &mut tried).await? {
            Some(r) if r.success() => return Ok(()),
            Some(r) => last = r,
            None => {}
        }
    }
    if let Some(password) = &creds.password {
        if offers(&last, MethodKind::KeyboardInteractive) {
            tried.push("keyboard-interactive".to_owned());
            if keyboard_interactive(ssh, user, password).await? {
                return Ok(());
            }
        }
        if offers(&last, MethodKind::Password)
            && let Some(secret) = ask(password, &format!("{user}'s password: ")).await
        {
            tried.push("password".to_owned());
            if ssh.authenticate_password(user, secret).await?.success() {
                return Ok(());
            }
        }
    }
    Err(ConnectError::AuthRejected {
        user: user.to_owned(),
        tried,
    })
}

/// Tries every key the agent holds; `None` when there is no agent to ask.
async fn agent_login(
    ssh: &mut Session,
    user: &str,
    socket: &AgentSocket,
    tried: &mut Vec<String>,
) -> Result<Option<AuthResult>, ConnectError> {
    let agent = match socket {
        AgentSocket::Env => match std::env::var_os("SSH_AUTH_SOCK") {
            Some(p) => AgentClient::connect_uds(p).await,
            None => return Ok(None),
        },
        AgentSocket::Path(p) => AgentClient::connect_uds(p).await,
    };
    let mut agent = agent.map_err(|e| ConnectError::Agent(e.to_string()))?;
    let ids = agent
        .request_identities()
        .await
        .map_err(|e| ConnectError::Agent(e.to_string()))?;
    let mut last = None;
    for id in ids {
        let AgentIdentity::PublicKey { key, .. } = id else {
            continue;
        };
        tried.push(format!("agent key {}", fingerprint(&key)));
        let hash = if key.algorithm().is_rsa() {
            ssh.best_supported_rsa_hash().await?.flatten()
        } else {
            None
        };
        let r = ssh
            .authenticate_publickey_with(user, key, hash, &mut agent)
            .await
            .map_err(|e| ConnectError::Agent(e.to_string()))?;
        if r.success() {
            return Ok(Some(r));
        }
        last = Some(r);
    }
    Ok(last)
}

/// Answers the server's prompts: a prompt that does not echo gets the password, one that
/// echoes (a user name, a question) an empty answer; at most 8 rounds.
async fn keyboard_interactive(
    ssh: &mut Session,
    user: &str,
    password: &Password,
) -> Result<bool, ConnectError> {
    let mut reply = ssh
        .authenticate_keyboard_interactive_start(user, None)
        .await?;
    for _ in 0..8 {
        match reply {
            KeyboardInteractiveAuthResponse::Success => return Ok(true),
            KeyboardInteractiveAuthResponse::Failure { .. } => return Ok(false),
            KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                let mut answers = Vec::with_capacity(prompts.len().min(16));
                for p in prompts.iter().take(16) {
                    if p.echo {
                        answers.push(String::new());
                    } else {
                        match ask(password, &p.prompt).await {
                            Some(s) => answers.push(s),
                            None => return Ok(false),
                        }
                    }
                }
                if prompts.len() > 16 {
                    return Ok(false);
                }
                reply = ssh
                    .authenticate_keyboard_interactive_respond(answers)
                    .await?;
            }
        }
    }
    Ok(false)
}

/// The password, asked for on a blocking thread if it comes from a prompt.
async fn ask(password: &Password, prompt: &str) -> Option<String> {
    match password {
        Password::Fixed(s) => Some(s.to_string()),
        Password::Ask(f) => {
            let (f, prompt) = (f.clone(), prompt.to_owned());
            tokio::task::spawn_blocking(move || f(&prompt))
                .await
                .ok()
                .flatten()
        }
    }
}
