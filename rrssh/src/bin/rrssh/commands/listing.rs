//! `rrssh routes` and `rrssh peers`: what a server serves, and who is connected to a hub.

use super::*;

pub(super) async fn routes(common: &Common, target: &str) -> Result<ExitCode, String> {
    let target = Target::parse(target)?;
    let client = connect(common, &target).await?;
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
        for p in &peers {
            println!("{:<20} {:<12} {}", p.name, p.user, p.fingerprint);
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
