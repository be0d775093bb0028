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
    let tokens = match &serving.gateway_tokens {
        Some(path) => Some(rrssh::gateway::Tokens::read_file(path).map_err(|e| e.to_string())?),
        None => None,
    };
    if tokens.is_some()
        && serving.gateway.is_none()
        && serving.https.is_none()
        && serving.ws.is_none()
    {
        return Err("--gateway-tokens needs --gateway, --https or --ws".to_owned());
    }
    let gateway_routes = || {
        tokens.clone().map(|t| {
            rrssh::gateway::Gateway::new(hub.registry())
                .tokens(t)
                .into_router()
        })
    };
    let certificate = match (&serving.https, &serving.tls_cert, &serving.tls_key) {
        (Some(addr), Some(cert), Some(key)) => {
            let certificate = rrssh::tls::ServerCertificate::load(cert, key)
                .map_err(|e| format!("--https: {e}"))?;
            let local = web_listener(addr, Some(certificate.clone()), gateway_routes(), &hub)
                .await
                .map_err(|e| format!("--https {addr}: {e}"))?;
            say!(
                "{what} listening on {local} for wss://, raw SSH{} (TLS)",
                if tokens.is_some() {
                    " and the gateway on https://"
                } else {
                    ""
                }
            );
            Some(certificate)
        }
        _ => None,
    };
    if let Some(addr) = &serving.ws {
        let local = web_listener(addr, None, gateway_routes(), &hub)
            .await
            .map_err(|e| format!("--ws {addr}: {e}"))?;
        say!(
            "{what} listening on {local} for ws://, raw SSH{} (no TLS)",
            if tokens.is_some() {
                " and the gateway on http://"
            } else {
                ""
            }
        );
    }
    if let Some((addr, tokens)) = serving.gateway.zip(tokens) {
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
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| format!("cannot watch SIGHUP: {e}"))?;
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            _ = hangups.recv() => match certificate.as_ref().map(|c| c.reload()) {
                Some(Ok(())) => say!("SIGHUP: certificate reloaded"),
                Some(Err(e)) => say!("SIGHUP: certificate not reloaded, the old one stays: {e}"),
                None => say!("SIGHUP: nothing to reload"),
            },
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

/// Adds a web listener (`--https`, `--ws`) to the hub; returns its address.
async fn web_listener(
    addr: &str,
    certificate: Option<std::sync::Arc<rrssh::tls::ServerCertificate>>,
    routes: Option<axum::Router>,
    hub: &rrssh::Hub,
) -> Result<std::net::SocketAddr, rrssh::websocket::WebListenError> {
    let mut web = rrssh::websocket::WebListener::bind(addr).await?;
    if let Some(c) = certificate {
        web = web.tls(c);
    }
    if let Some(r) = routes {
        web = web.http(r);
    }
    web.serve(hub)
}
