//! `rrssh serve` and `rrssh hub`: an rrssh server from the command line (a hub is one with
//! caller access), with terminals, tunnels and an HTTP gateway if asked.

use super::*;
use crate::args::Serving;
use rrssh::Server;
use rrssh::hub::HubEvent;
use rrssh::keys::AuthorizedKeys;
use rrssh::tunnel::PermitOpen;

/// What `serve` adds to a hub's options.
#[derive(Default)]
pub(super) struct Extra {
    pub(super) terminal: Option<String>,
    pub(super) terminal_for_all_keys: bool,
    pub(super) terminal_idle: Option<Duration>,
    pub(super) permit_open: Option<String>,
    pub(super) permit_listen: Option<String>,
    pub(super) relay: bool,
    pub(super) cluster: Option<rrssh::cluster::Cluster>,
}

pub(super) async fn serve(serving: Serving, extra: Extra, what: &str) -> Result<ExitCode, String> {
    let key = rrssh::keys::load_or_generate_ed25519(&serving.host_key, &format!("rrssh-{what}"))
        .map_err(|e| e.to_string())?;
    let fp = rrssh::keys::fingerprint(key.public_key());
    // Keys without `rrssh-users` log in as the account running the server, as the keys in its
    // ~/.ssh/authorized_keys would under sshd.
    let owner = std::env::var("USER").unwrap_or_else(|_| "rrssh".to_owned());
    let authorized = AuthorizedKeys::load(&serving.authorized_keys)
        .map_err(|e| e.to_string())?
        .owned_by(owner);
    let mut server = Server::new();
    if let Some(c) = extra.cluster {
        say!("joining the cluster as hub {}", c.id());
        server = server.cluster(c);
    }
    let mut offers = Vec::new();
    if let Some(shell) = &extra.terminal {
        let mut t = rrssh::terminal::Terminal::shell(shell);
        if let Some(idle) = extra.terminal_idle {
            t = t.idle_timeout(idle);
        }
        let to = if extra.terminal_for_all_keys {
            t = t.for_every_key();
            "every key not forbidden one"
        } else {
            "keys granted one"
        };
        server = server.terminal(t);
        offers.push(format!("terminals ({shell}) for {to}"));
    }
    if let Some(list) = &extra.permit_open {
        let p = PermitOpen::parse(list).map_err(|e| format!("--permit-open: {e}"))?;
        server = server.permit_open(p);
        offers.push(format!("tunnels to {list}"));
    }
    if let Some(list) = &extra.permit_listen {
        let p = PermitOpen::parse(list).map_err(|e| format!("--permit-listen: {e}"))?;
        server = server.permit_listen(p);
        offers.push(format!("listening on {list}"));
    }
    if extra.relay {
        offers.push("caller access".to_owned());
    }
    let hub = server
        .host_key(key)
        .authorized_keys(authorized)
        .relay(extra.relay)
        .open_registration(serving.open_registration)
        .per_key_memory(serving.per_key_memory)
        .process_memory(serving.process_memory)
        .max_calls_per_key(serving.max_calls_per_key)
        .bind(&serving.listen)
        .await
        .map_err(|e| e.to_string())?;
    let offers = if offers.is_empty() {
        String::new()
    } else {
        format!("; {}", offers.join(", "))
    };
    say!(
        "{what} listening on {} (host key {fp}){offers}",
        hub.local_addr()
    );
    if let Some((addr, tokens)) = serving.gateway.zip(serving.gateway_tokens) {
        let tokens = rrssh::gateway::Tokens::read_file(&tokens).map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("gateway: cannot listen on {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        say!(
            "gateway listening on http://{local} ({} tokens)",
            tokens.len()
        );
        let gw = rrssh::gateway::Gateway::new(hub.registry()).tokens(tokens);
        tokio::spawn(async move {
            if let Err(e) = gw.serve(listener).await {
                eprintln!("rrssh: gateway stopped: {e}");
            }
        });
    }
    let mut events = hub.events();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            e = events.next() => match e {
                Some(HubEvent::Connected { name, peer }) => say!(
                    "connected    {} {} {}",
                    name.as_deref().unwrap_or("-"), peer.user(), peer.fingerprint()
                ),
                Some(HubEvent::Disconnected { name, peer, reason }) => say!(
                    "disconnected {} {} ({reason})",
                    name.as_deref().unwrap_or("-"), peer.fingerprint()
                ),
                Some(HubEvent::Refused { name, peer }) => say!(
                    "refused      {name} {} (the name is not this key's)",
                    peer.fingerprint()
                ),
                Some(_) => {}
                None => break,
            },
        }
    }
    let cut = hub.shutdown(Duration::from_secs(5)).await;
    say!("{what} stopped ({cut} calls cut)");
    Ok(ExitCode::SUCCESS)
}
