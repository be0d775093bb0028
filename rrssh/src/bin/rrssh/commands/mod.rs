//! The commands: one file each, and what they share (connecting, exit codes).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use futures_util::StreamExt;
use http_body_util::BodyExt;
use rrssh::client::{CallExt, Error};
use rrssh::hub::HubEvent;
use rrssh::hub::relay::{PEERS_PATH, PeerListing};
use rrssh::keys::{AuthorizedKeys, HostKeyPolicy};
use rrssh::routing::introspect::{ROUTES_PATH, RouteSummary};
use rrssh::{Client, Server};

use crate::args::{Cli, Command, Common};
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

mod call;
mod forward;
mod hub;
mod keygen;
mod listing;
mod terminal;

use self::call::{call, stream};
use self::forward::forward;
use self::hub::hub;
use self::keygen::keygen;
use self::listing::{peers, routes};
use self::terminal::{shell, webshell};

pub(crate) async fn run(cli: Cli) -> Result<ExitCode, String> {
    let common = cli.common;
    match cli.command {
        Command::Keygen {
            file,
            comment,
            force,
        } => keygen(&file, comment, force),
        Command::Call {
            target,
            method,
            path,
            params,
            json,
            include,
        } => call(&common, &target, &method, &path, &params, json, include).await,
        Command::Stream {
            target,
            path,
            params,
            limit,
        } => stream(&common, &target, &path, &params, limit).await,
        Command::Routes { target } => routes(&common, &target).await,
        Command::Hub {
            listen,
            host_key,
            authorized_keys,
            gateway,
            gateway_tokens,
            open_registration,
            cluster,
            hub_id,
        } => {
            let gateway = gateway.zip(gateway_tokens);
            let cluster = cluster.map(|url| {
                let c = rrssh::cluster::Cluster::new(url);
                match hub_id {
                    Some(id) => c.hub_id(id),
                    None => c,
                }
            });
            hub(
                &listen,
                &host_key,
                &authorized_keys,
                gateway,
                open_registration,
                cluster,
            )
            .await
        }
        Command::Peers { target } => peers(&common, &target).await,
        Command::Shell { target, command } => shell(&common, &target, command).await,
        Command::Webshell {
            target,
            command,
            listen,
        } => webshell(&common, &target, command, &listen).await,
        Command::Forward {
            local,
            remote,
            target,
        } => match (local, remote) {
            (Some(spec), _) => forward(&common, &target, &spec, false).await,
            (None, Some(spec)) => forward(&common, &target, &spec, true).await,
            (None, None) => Err("give -L or -R".to_owned()),
        },
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

async fn connect(common: &Common, target: &Target) -> Result<Client, String> {
    builder(common, target)?
        .connect()
        .await
        .map_err(|e| e.to_string())
}

fn builder(common: &Common, target: &Target) -> Result<rrssh::transport::ClientBuilder, String> {
    let identity = common
        .identity
        .clone()
        .unwrap_or_else(|| home().join(".ssh/id_ed25519"));
    let key = rrssh::keys::load_private_key(&identity, None).map_err(|e| e.to_string())?;
    let known_hosts = common
        .known_hosts
        .clone()
        .unwrap_or_else(|| home().join(".ssh/known_hosts"));
    let policy = if common.accept_new {
        HostKeyPolicy::AcceptNew(known_hosts)
    } else {
        HostKeyPolicy::Strict(known_hosts)
    };
    let mut builder = Client::builder(target.addr.clone())
        .identity(key)
        .host_keys(policy);
    if let Some(u) = &target.user {
        builder = builder.user(u.clone());
    }
    Ok(builder)
}

fn exit_for(status: u16) -> ExitCode {
    match status {
        200..=299 => ExitCode::SUCCESS,
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
