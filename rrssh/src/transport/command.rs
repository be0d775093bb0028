//! The carrier over a child process: rrssh over a spawned `ssh` (or any command whose stdin and
//! stdout reach an rrssh peer), as git and rsync do. Authentication, host keys, `ProxyJump`,
//! the agent and certificates are then OpenSSH's.

use std::ffi::OsStr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::oneshot;

use super::ConnectError;
use super::SUBSYSTEM;
use super::child::ChildGuard;
use super::client::{Carrier, Client};
use crate::connection::{Connection, ConnectionConfig};
use crate::proto::Role;

/// How much of the child's standard error is kept for error messages.
const STDERR_KEEP: usize = 4096;

type Stderr = Arc<Mutex<String>>;

fn stderr_text(buf: &Stderr) -> String {
    buf.lock()
        .unwrap_or_else(|e| e.into_inner())
        .trim()
        .to_owned()
}

impl Client {
    /// Runs the rrssh carrier over a child process's stdin and stdout: the first item is the
    /// program, the rest its arguments. With OpenSSH:
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rrssh::transport::ConnectError> {
    /// let client = rrssh::Client::over_command(["ssh", "-p", "8022", "ada@api.example", "-s", "rrssh"]).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// The child's standard error is kept: if it exits during the handshake, the error says
    /// how, with its message (`ssh exited with 255: Host key verification failed.`). Dropping
    /// the last clone of the client (or [`close`](Client::close)) kills the child; if the child
    /// dies, calls in flight fail with [`Error::Unavailable`](crate::client::Error::Unavailable).
    pub async fn over_command<I, S>(command: I) -> Result<Client, ConnectError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut parts = command.into_iter();
        let Some(program) = parts.next() else {
            return Err(ConnectError::Command {
                program: String::new(),
                status: "not started".into(),
                stderr: "empty command".into(),
            });
        };
        let name = program.as_ref().to_string_lossy().into_owned();
        let mut child = tokio::process::Command::new(program.as_ref())
            .args(parts)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ConnectError::Command {
                program: name.clone(),
                status: "not started".into(),
                stderr: e.to_string(),
            })?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            unreachable!("all three were piped");
        };
        let errors: Stderr = Arc::default();
        let errors_w = errors.clone();
        let program_log = name.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!(program = %program_log, "{line}");
                let mut buf = errors_w.lock().unwrap_or_else(|e| e.into_inner());
                buf.push_str(&line);
                buf.push('\n');
                if buf.len() > STDERR_KEEP {
                    let cut = buf.len() - STDERR_KEEP;
                    let cut = (cut..buf.len())
                        .find(|&i| buf.is_char_boundary(i))
                        .unwrap_or(0);
                    buf.drain(..cut);
                }
            }
        });

        let io = tokio::io::join(stdout, stdin);
        let conn = match Connection::start(io, ConnectionConfig::new(Role::Initiator)).await {
            Ok(c) => c,
            Err(e) => {
                // The child most likely failed: report its exit and its own words.
                let status = match tokio::time::timeout(Duration::from_secs(5), child.wait()).await
                {
                    Ok(Ok(st)) => match st.code() {
                        Some(code) => code.to_string(),
                        None => st.to_string(),
                    },
                    Ok(Err(err)) => err.to_string(),
                    Err(_) => {
                        let _ = child.kill().await;
                        format!("no exit (handshake failed: {e})")
                    }
                };
                // Give the stderr reader a moment to catch the last lines.
                tokio::time::sleep(Duration::from_millis(20)).await;
                let mut stderr = stderr_text(&errors);
                if stderr.is_empty() {
                    stderr = e.to_string();
                }
                return Err(ConnectError::Command {
                    program: name,
                    status,
                    stderr,
                });
            }
        };

        let (kill_tx, kill_rx) = oneshot::channel();
        let watched = conn.clone();
        tokio::spawn(async move {
            let exit = tokio::select! {
                r = child.wait() => r,
                _ = kill_rx => {
                    let _ = child.kill().await;
                    return;
                }
            };
            tokio::time::sleep(Duration::from_millis(20)).await;
            let status = match exit {
                Ok(st) => st.code().map_or_else(|| st.to_string(), |c| c.to_string()),
                Err(e) => e.to_string(),
            };
            let reason = format!("{name} exited with {status}: {}", stderr_text(&errors));
            tracing::debug!(%reason, "carrier command ended");
            watched.close(&reason);
        });
        Ok(Client::new(
            conn,
            Carrier::Command(ChildGuard::new(kill_tx)),
            None,
        ))
    }

    /// [`over_command`](Self::over_command) with OpenSSH's `ssh`, for a target written
    /// `[user@]host[:port]`: runs `ssh [-p PORT] -o BatchMode=yes -s -- [user@]host rrssh` (see
    /// [`ssh_command`]). Everything else (keys, agent, `known_hosts`, `ProxyJump`,
    /// certificates, the port when the target has none) comes from the user's OpenSSH setup.
    pub async fn over_ssh(target: &str) -> Result<Client, ConnectError> {
        let host = target.rsplit_once('@').map_or(target, |(_, h)| h);
        if target.is_empty() || target.starts_with('-') || host.is_empty() || host.starts_with('-')
        {
            return Err(ConnectError::BadTarget(target.to_owned()));
        }
        Self::over_command(ssh_command(target, &[])).await
    }
}

/// The `ssh` command line for `[user@]host[:port]`, with `extra` options before the host. The
/// port is passed only if the target has one; otherwise OpenSSH's configuration decides (a
/// `Port` in `ssh_config`, else 22). The target always comes after `--`, so a target that
/// looks like an option (`-oProxyCommand=…`) is a host name to `ssh`, never an option.
pub fn ssh_command(target: &str, extra: &[&str]) -> Vec<String> {
    let mut cmd = vec!["ssh".to_owned()];
    let login = match target.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.parse::<u16>().is_ok() => {
            cmd.extend(["-p".to_owned(), p.to_owned()]);
            h
        }
        _ => target,
    };
    cmd.extend(["-o".to_owned(), "BatchMode=yes".to_owned()]);
    cmd.extend(extra.iter().map(|s| (*s).to_owned()));
    cmd.extend([
        "-s".to_owned(),
        "--".to_owned(),
        login.to_owned(),
        SUBSYSTEM.to_owned(),
    ]);
    cmd
}

#[cfg(test)]
mod tests {
    use super::ssh_command;

    #[test]
    fn ssh_command_lines() {
        assert_eq!(
            ssh_command("ada@api.example:2222", &[]).join(" "),
            "ssh -p 2222 -o BatchMode=yes -s -- ada@api.example rrssh"
        );
        assert_eq!(
            ssh_command("api.example", &["-F", "cfg"]).join(" "),
            "ssh -o BatchMode=yes -F cfg -s -- api.example rrssh"
        );
        // An option in disguise stays a host name.
        let cmd = ssh_command("-oProxyCommand=touch /tmp/x", &[]);
        let dashes = cmd.iter().position(|a| a == "--").unwrap();
        assert_eq!(cmd[dashes + 1], "-oProxyCommand=touch /tmp/x");
    }
}
