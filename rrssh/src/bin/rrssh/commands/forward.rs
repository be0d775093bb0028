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
    login: &Login,
    reconnect: crate::args::Reconnect,
    target: &str,
    spec: &str,
    remote: bool,
) -> Result<ExitCode, String> {
    let (listen, host, port) = parse_forward(spec)?;
    let target_parsed = Target::parse(target)?;
    server_only(&target_parsed, "tunnels")?;
    // Fail early on bad keys or host keys, then stay connected (SSH only: any SSH server).
    crate::login::connect(login, &target_parsed, true)
        .await?
        .close()
        .await;
    let client = crate::login::builder(login, &target_parsed)?
        .plain()
        .backoff(reconnect.backoff())
        .connect_persistent();
    if remote {
        let (bind, bind_port) = listen
            .rsplit_once(':')
            .and_then(|(b, p)| Some((b.to_owned(), p.parse::<u16>().ok()?)))
            .ok_or_else(|| format!("bad forward `{spec}`: PORT must be a number"))?;
        let t = client
            .forward_remote(&bind, bind_port, &host, port)
            .await
            .map_err(|e| e.to_string())?;
        note!(
            "the server listens on {bind}:{}; forwarding to {host}:{port} here (Ctrl-C stops)",
            t.port()
        );
        follow(&client).await;
        note!("stopped");
        return Ok(ExitCode::SUCCESS);
    }
    let fwd = client
        .forward_local(listen.as_str(), &host, port)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    note!(
        "forwarding {} to {host}:{port} through {target} (Ctrl-C stops)",
        fwd.local_addr()
    );
    tokio::select! {
        () = follow(&client) => {}
        why = fwd.prohibited() => {
            return Err(format!("{why}: stopping (the server's permissions, not a failure to retry)"));
        }
    }
    note!(
        "stopped ({} connections carried, {} refused)",
        fwd.opened(),
        fwd.refused()
    );
    Ok(ExitCode::SUCCESS)
}
