//! `rrssh hub`: a hub from the command line, with its HTTP gateway if asked.

use super::*;

pub(super) async fn hub(
    listen: &str,
    host_key: &Path,
    authorized: &Path,
    gateway: Option<(String, std::path::PathBuf)>,
    open_registration: bool,
    cluster: Option<rrssh::cluster::Cluster>,
) -> Result<ExitCode, String> {
    let key =
        rrssh::keys::load_or_generate_ed25519(host_key, "rrssh-hub").map_err(|e| e.to_string())?;
    let fp = rrssh::keys::fingerprint(key.public_key());
    // Keys without `rrssh-users` log in as the account running the hub, as the keys in its
    // ~/.ssh/authorized_keys would under sshd.
    let owner = std::env::var("USER").unwrap_or_else(|_| "rrssh".to_owned());
    let authorized = AuthorizedKeys::load(authorized)
        .map_err(|e| e.to_string())?
        .owned_by(owner);
    let mut server = Server::new();
    if let Some(c) = cluster {
        say!("joining the cluster as hub {}", c.id());
        server = server.cluster(c);
    }
    let hub = server
        .host_key(key)
        .authorized_keys(authorized)
        .relay(true)
        .open_registration(open_registration)
        .bind(listen)
        .await
        .map_err(|e| e.to_string())?;
    say!("hub listening on {} (host key {fp})", hub.local_addr());
    if let Some((addr, tokens)) = gateway {
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
                eprintln!("gateway stopped: {e}");
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
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
    let cut = hub.shutdown(std::time::Duration::from_secs(5)).await;
    say!("hub stopped ({cut} calls cut)");
    Ok(ExitCode::SUCCESS)
}
