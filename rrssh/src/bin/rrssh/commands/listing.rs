//! `rrssh routes` and `rrssh peers`: what a server serves, and who is connected to a hub.

use super::*;

pub(super) async fn routes(
    common: &Common,
    target: &str,
    openapi: bool,
) -> Result<ExitCode, String> {
    let target = Target::parse(target)?;
    let client = connect(common, &target).await?;
    if openapi {
        let doc: serde_json::Value =
            get_json(&client, &target.path(rrssh::openapi::OPENAPI_PATH)).await?;
        let text = serde_json::to_vec_pretty(&doc).map_err(|e| e.to_string())?;
        print_body(&text, common.color).map_err(|e| e.to_string())?;
        client.close().await;
        return Ok(ExitCode::SUCCESS);
    }
    let routes: Vec<RouteSummary> = get_json(&client, &target.path(ROUTES_PATH)).await?;
    if pretty(common.color) {
        for r in &routes {
            println!(
                "{:<7} {:<30} {}",
                r.method,
                r.path,
                r.summary.as_deref().unwrap_or("")
            );
            if !r.args.is_empty() {
                println!("        args: {}", r.args.join(", "));
            }
            if let Some(o) = &r.output {
                println!("        returns: {o}");
            }
            if let Some(s) = &r.scope {
                println!("        scope: {s}");
            }
        }
    } else {
        println!(
            "{}",
            serde_json::to_string(&routes).map_err(|e| e.to_string())?
        );
    }
    client.close().await;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn peers(common: &Common, target: &str) -> Result<ExitCode, String> {
    let target = Target::parse(target)?;
    let client = connect(common, &target).await?;
    let peers: Vec<PeerListing> = get_json(&client, PEERS_PATH).await?;
    if pretty(common.color) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        println!(
            "{:<20} {:<12} {:<51} {:>8} {:>7} {:>6} {:>7} {:>9}",
            "NAME", "USER", "FINGERPRINT", "UP", "CALLS", "ERRORS", "WAITING", "ANSWER"
        );
        for p in &peers {
            let s = p.stats;
            println!(
                "{:<20} {:<12} {:<51} {:>8} {:>7} {:>6} {:>7} {:>7.1}ms",
                p.name,
                p.user,
                p.fingerprint,
                uptime(now.saturating_sub(p.connected_at)),
                s.calls,
                s.errors,
                s.waiting,
                s.mean_answer_us as f64 / 1000.0
            );
        }
    } else {
        println!(
            "{}",
            serde_json::to_string(&peers).map_err(|e| e.to_string())?
        );
    }
    client.close().await;
    Ok(ExitCode::SUCCESS)
}

/// `rrssh peers --watch`: the hub's events as they happen, across reconnections.
pub(super) async fn watch(
    common: &Common,
    reconnect: crate::args::Reconnect,
    target: &str,
) -> Result<ExitCode, String> {
    use rrssh::hub::watch::{EVENTS_PATH, WatchEvent};
    let target = Target::parse(target)?;
    server_only(&target, "watchers")?;
    // Fail early on bad keys or host keys (waiting for a hub not up yet), then stay connected.
    crate::login::first_connection(&common.login, &target, Dialing::Api, reconnect.backoff())
        .await?
        .close()
        .await;
    let client = crate::login::builder(&common.login, &target, Dialing::Api)?
        .backoff(reconnect.backoff())
        .connect_persistent();
    let human = pretty(common.color);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut first = true;
    loop {
        let conn = tokio::select! {
            _ = &mut ctrl_c => break,
            c = client.connected() => c,
        };
        if !first && human {
            say!("(reconnected: events while away were missed)");
        }
        first = false;
        let mut items = match conn.stream(EVENTS_PATH).items::<WatchEvent>().await {
            Ok(items) => items,
            Err(e) => return Err(e.to_string()),
        };
        if human {
            say!("watching {target} (Ctrl-C stops)");
        }
        loop {
            let item = tokio::select! {
                _ = &mut ctrl_c => return Ok(ExitCode::SUCCESS),
                i = items.next() => i,
            };
            match item {
                Some(Ok(e)) if human => match e {
                    WatchEvent::Connected {
                        name,
                        user,
                        fingerprint,
                        ..
                    } => {
                        say!("connected    {name:<20} {user:<12} {fingerprint}");
                    }
                    WatchEvent::Disconnected {
                        name,
                        fingerprint,
                        reason,
                        ..
                    } => {
                        say!("disconnected {name:<20} {fingerprint} ({reason})");
                    }
                    WatchEvent::Refused {
                        name, fingerprint, ..
                    } => {
                        say!("refused      {name:<20} {fingerprint}");
                    }
                    WatchEvent::Lagged { missed } => say!("(missed {missed} events)"),
                    _ => {}
                },
                Some(Ok(e)) => say!("{}", serde_json::to_string(&e).unwrap_or_default()),
                Some(Err(e)) => {
                    note!(warn, "lost {target} ({e}); reconnecting");
                    break;
                }
                None => {
                    // The stream ends with its connection: the hub is gone, or restarting.
                    let why = tokio::time::timeout(Duration::from_secs(1), conn.closed())
                        .await
                        .unwrap_or_else(|_| "the event stream ended".to_owned());
                    note!(warn, "lost {target} ({why}); reconnecting");
                    break;
                }
            }
        }
        // Wait for the next connection.
        let _ = conn.closed().await;
    }
    Ok(ExitCode::SUCCESS)
}

/// `42s`, `17m`, `5h`, `3d`: how long a peer has been connected.
fn uptime(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}
