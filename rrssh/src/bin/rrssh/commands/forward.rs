//! `rrssh forward -L|-R`: TCP tunnels, like `ssh -N -L` and `ssh -N -R`.

use super::*;

/// `[BIND:]PORT:HOST:HOSTPORT`, as `ssh -L` and `ssh -R` take it; BIND defaults to 127.0.0.1.
pub(super) fn parse_forward(spec: &str) -> Result<(String, String, u16), String> {
    let bad = || format!("bad forward `{spec}`: expected [BIND:]PORT:HOST:HOSTPORT");
    let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
    let [hostport, host, local] = parts[..] else {
        return Err(bad());
    };
    let hostport: u16 = hostport.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    let listen = if local.parse::<u16>().is_ok() {
        format!("127.0.0.1:{local}")
    } else {
        local.to_owned()
    };
    Ok((listen, host.to_owned(), hostport))
}

pub(super) async fn forward(
    common: &Common,
    target: &str,
    spec: &str,
    remote: bool,
) -> Result<ExitCode, String> {
    let (listen, host, port) = parse_forward(spec)?;
    let target_parsed = Target::parse(target)?;
    if target_parsed.peer.is_some() {
        return Err("tunnels go to a server (ssh://…), not to a peer behind a hub".to_owned());
    }
    // Fail early on bad keys or host keys, then stay connected.
    connect(common, &target_parsed).await?.close().await;
    let client = builder(common, &target_parsed)?.connect_persistent();
    let mut local_fwd = None;
    let mut _remote_fwd = None;
    if remote {
        let (bind, bind_port) = listen
            .rsplit_once(':')
            .and_then(|(b, p)| Some((b.to_owned(), p.parse::<u16>().ok()?)))
            .ok_or_else(|| format!("bad forward `{spec}`: PORT must be a number"))?;
        let t = client
            .forward_remote(&bind, bind_port, &host, port)
            .await
            .map_err(|e| e.to_string())?;
        say!(
            "the server listens on {bind}:{}; forwarding to {host}:{port} here (Ctrl-C stops)",
            t.port()
        );
        _remote_fwd = Some(t);
    } else {
        let fwd = client
            .forward_local(listen.as_str(), &host, port)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        say!(
            "forwarding {} to {host}:{port} through {target} (Ctrl-C stops)",
            fwd.local_addr()
        );
        local_fwd = Some(fwd);
    }
    let mut events = client.events();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        tokio::select! {
            _ = &mut ctrl_c => break,
            e = events.recv() => match e {
                Ok(rrssh::transport::ConnectionEvent::Disconnected { reason }) => {
                    say!("disconnected ({reason}); reconnecting");
                }
                Ok(rrssh::transport::ConnectionEvent::Connected) => say!("connected"),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break,
            },
        }
    }
    match local_fwd {
        Some(fwd) => say!(
            "stopped ({} connections carried, {} refused)",
            fwd.opened(),
            fwd.refused()
        ),
        None => say!("stopped"),
    }
    Ok(ExitCode::SUCCESS)
}
