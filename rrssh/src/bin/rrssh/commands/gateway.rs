//! `rrssh gateway`: a local HTTP gateway into one SSH connection (a server, or a peer through
//! a hub), as RestPipe runs a web server on every node.

use super::*;
use crate::args::Reconnect;
use rrssh::gateway::{Gateway, Tokens};

pub(super) async fn gateway(
    login: &Login,
    reconnect: Reconnect,
    target: &str,
    listen: &str,
    tokens: Option<&std::path::Path>,
    // Admits callers without a token, reaching it by loopback names or these.
    anonymous: Option<&[String]>,
    // Check the settings and the token file, bind and dial nothing.
    check: bool,
) -> Result<ExitCode, String> {
    let t = Target::parse(target)?;
    if check {
        if let Some(path) = tokens {
            Tokens::read_file(path).map_err(|e| e.to_string())?;
        }
        super::serve::check_address("--listen", listen)?;
        say!("# configuration OK: gateway to {t}");
        return Ok(ExitCode::SUCCESS);
    }
    // Fail early on bad keys or host keys (waiting for a server not up yet), then stay
    // connected.
    crate::login::first_connection(login, &t, Dialing::Api, reconnect.backoff())
        .await?
        .close()
        .await;
    let client = crate::login::builder(login, &t, Dialing::Api)?
        .backoff(reconnect.backoff())
        .connect_persistent();
    let gw = match &t.peer {
        None => Gateway::to(client.clone()),
        Some(peer) => {
            // Calls to the peer go through the hub's caller access.
            let prefix = format!("{PEERS_PATH}/{peer}");
            let through_hub =
                tower::ServiceExt::map_request(client.clone(), move |mut req: rrssh::Request| {
                    let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
                    if let Ok(uri) = format!("{prefix}{pq}").parse() {
                        *req.uri_mut() = uri;
                    }
                    req
                });
            Gateway::to(through_hub)
        }
    };
    let gw = if let Some(hosts) = anonymous {
        let gw = gw.anonymous(rrssh::auth::Grants::parse("call:*").map_err(|e| e.to_string())?);
        hosts.iter().fold(gw, |gw, h| gw.allow_host(h.clone()))
    } else {
        let path = tokens.ok_or("give --tokens FILE or --anonymous")?;
        gw.tokens(Tokens::read_file(path).map_err(|e| e.to_string())?)
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    note!("gateway listening on http://{local}, calling {t} (Ctrl-C stops)");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(gw.serve_with_shutdown(listener, async {
        let _ = stop_rx.await;
    }));
    follow(&client).await;
    let _ = stop_tx.send(());
    let _ = serving.await;
    note!("stopped");
    Ok(ExitCode::SUCCESS)
}
