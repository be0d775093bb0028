//! The commands: one file each, and what they share (connecting, exit codes).

use std::process::ExitCode;
use std::time::Duration;

use futures_util::StreamExt;
use http_body_util::BodyExt;
use rrssh::Client;
use rrssh::client::{CallExt, Error};
use rrssh::hub::relay::{PEERS_PATH, PeerListing};
use rrssh::routing::introspect::{ROUTES_PATH, RouteSummary};

use crate::args::{Cli, Color, Command, Login};
use crate::login::Dialing;
use crate::output::{pretty, print_body};
use crate::target::Target;

/// Prints a line, ignoring a closed stdout (a long-running command must not die of it).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
        let _ = out.flush();
    }};
}

/// Logs what a running server, gateway or tunnel does (see `logging`): `note!` at INFO,
/// `note!(warn, …)` as a warning.
macro_rules! note {
    (warn, $($arg:tt)*) => { tracing::warn!(target: "rrssh::cli", $($arg)*) };
    ($($arg:tt)*) => { tracing::info!(target: "rrssh::cli", $($arg)*) };
}

mod ca;
mod call;
mod docs;
mod forward;
mod gateway;
mod keygen;
mod listing;
mod serve;
mod terminal;

use self::call::{call, stream};
use self::forward::forward;
use self::keygen::keygen;
use self::listing::{peers, routes};
use self::terminal::{shell, webshell};

/// What the calling commands share.
pub(crate) struct Common {
    pub(crate) login: Login,
    pub(crate) color: Color,
    pub(crate) timeout: Option<Duration>,
}

pub(crate) async fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Keygen {
            file,
            comment,
            force,
            passphrase,
        } => keygen(&file, comment, force, passphrase),
        Command::Ca { action } => self::ca::ca(action),
        Command::Completions { shell } => docs::completions(shell),
        Command::Man { command } => docs::man(command.as_deref()),
        Command::Call {
            target,
            method,
            path,
            items,
            headers,
            json,
            data,
            raw,
            include,
            login,
            output,
            budget,
        } => {
            let common = Common {
                login,
                color: output.color,
                timeout: budget.timeout,
            };
            let given = call::Given {
                items,
                headers,
                json,
                data,
            };
            let shown = call::Shown { include, raw };
            call(&common, &target, &method, &path, &given, &shown).await
        }
        Command::Stream {
            target,
            path,
            items,
            headers,
            limit,
            login,
            budget,
        } => {
            let common = Common {
                login,
                color: Color::Never,
                timeout: budget.timeout,
            };
            let given = call::Given {
                items,
                headers,
                json: None,
                data: None,
            };
            stream(&common, &target, &path, &given, limit).await
        }
        Command::Routes {
            target,
            openapi,
            login,
            output,
        } => {
            let common = Common {
                login,
                color: output.color,
                timeout: None,
            };
            routes(&common, &target, openapi).await
        }
        Command::Serve {
            serving,
            terminal,
            terminal_for_all_keys,
            record_terminals,
            terminal_idle,
            permit_open,
            permit_listen,
            relay,
            web_terminal,
        } => {
            let extra = serve::Extra {
                terminal,
                record_terminals,
                terminal_for_all_keys,
                terminal_idle,
                permit_open,
                permit_listen,
                relay,
                cluster: None,
                web_terminal,
            };
            serve::serve(serving, extra, "server").await
        }
        Command::Hub {
            serving,
            cluster,
            hub_id,
            cluster_creds,
            cluster_nkey,
            cluster_ca,
            cluster_cert,
            cluster_key,
            cluster_hub_keys,
            cluster_insecure_unsigned,
        } => {
            let cluster = match cluster {
                None => None,
                Some(url) => {
                    let mut c = rrssh::cluster::Cluster::new(url);
                    if let Some(id) = hub_id {
                        c = c.hub_id(id);
                    }
                    if let Some(path) = cluster_creds {
                        c = c.credentials_file(path);
                    }
                    if let Some(path) = cluster_nkey {
                        let seed = std::fs::read_to_string(&path)
                            .map_err(|e| format!("{}: {e}", path.display()))?;
                        c = c.nkey(seed.trim());
                    }
                    if let Some(ca) = cluster_ca {
                        c = c.tls_root_certificate(ca);
                    }
                    if let (Some(cert), Some(key)) = (cluster_cert, cluster_key) {
                        c = c.tls_client_certificate(cert, key);
                    }
                    if let Some(path) = cluster_hub_keys {
                        let keys = rrssh::cluster::HubKeys::read(&path)
                            .map_err(|e| format!("--cluster-hub-keys: {e}"))?;
                        c = c.trusted_hub_keys(keys);
                    }
                    if cluster_insecure_unsigned {
                        c = c.insecure_unsigned();
                    }
                    Some(c)
                }
            };
            let extra = serve::Extra {
                relay: true,
                cluster,
                ..serve::Extra::default()
            };
            serve::serve(serving, extra, "hub").await
        }
        Command::Gateway {
            target,
            listen,
            config: _,
            check_config,
            tokens,
            anonymous,
            allow_host,
            login,
            reconnect,
        } => {
            gateway::gateway(
                &login,
                reconnect,
                &target,
                &listen,
                tokens.as_deref(),
                anonymous.then_some(allow_host.as_slice()),
                check_config,
            )
            .await
        }
        Command::Peers {
            target,
            watch,
            login,
            output,
            reconnect,
        } => {
            let common = Common {
                login,
                color: output.color,
                timeout: None,
            };
            if watch {
                listing::watch(&common, reconnect, &target).await
            } else {
                peers(&common, &target).await
            }
        }
        Command::Shell {
            target,
            command,
            tty,
            no_tty,
            idle_timeout,
            login,
        } => {
            let command = (!command.is_empty()).then(|| command.join(" "));
            // As `ssh`: a terminal when the input is one, unless -t or -T says otherwise.
            let pty = if tty {
                true
            } else if no_tty {
                false
            } else {
                rustix::termios::isatty(rustix::stdio::stdin())
            };
            shell(&login, &target, command, pty, idle_timeout).await
        }
        Command::Webshell {
            target,
            command,
            listen,
            login,
            reconnect,
        } => webshell(&login, reconnect, &target, command, &listen).await,
        Command::Forward {
            local,
            remote,
            dynamic,
            no_command: _,
            target,
            login,
            reconnect,
        } => {
            let specs = forward::Specs {
                local,
                remote,
                dynamic,
            };
            forward(&login, reconnect, &target, &specs).await
        }
    }
}

/// Connects with the rrssh API.
async fn connect(common: &Common, target: &Target) -> Result<Client, String> {
    crate::login::connect(&common.login, target, Dialing::Api).await
}

/// Refuses a `hub://` target where only a server makes sense.
fn server_only(target: &Target, what: &str) -> Result<(), String> {
    if target.peer.is_some() {
        return Err(format!(
            "{what} go to a server (ssh://…), not to a peer behind a hub"
        ));
    }
    Ok(())
}

/// The exit code for an answer's status, by class (as `httpie --check-status`).
fn exit_for(status: u16) -> ExitCode {
    match status {
        200..=299 => ExitCode::SUCCESS,
        300..=399 => ExitCode::from(3),
        400..=499 => ExitCode::from(4),
        _ => ExitCode::from(5),
    }
}

async fn get_json<T: serde::de::DeserializeOwned + Send>(
    client: &Client,
    path: &str,
) -> Result<T, String> {
    client.get(path).receive::<T>().await.map_err(|e| match e {
        Error::Status { body, .. } => String::from_utf8_lossy(&body.to_json()).into_owned(),
        e => e.to_string(),
    })
}

/// Says what a reconnecting client is doing, until Ctrl-C.
async fn follow(client: &rrssh::ReconnectingClient) {
    let mut events = client.events();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            e = events.recv() => match e {
                Ok(rrssh::transport::ConnectionEvent::Disconnected { reason }) => {
                    note!(warn, "disconnected ({reason}); reconnecting");
                }
                Ok(rrssh::transport::ConnectionEvent::Connected) => note!("connected"),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break,
            },
        }
    }
}
