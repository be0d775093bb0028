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

/// `[BIND:]PORT` of `-D`; BIND defaults to 127.0.0.1.
pub(super) fn parse_dynamic(spec: &str) -> Result<String, String> {
    let bad = || format!("bad -D `{spec}`: expected [BIND:]PORT");
    let (bind, port) = match spec.rsplit_once(':') {
        Some((b, p)) => (b.trim_start_matches('[').trim_end_matches(']'), p),
        None => ("127.0.0.1", spec),
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    if bind.is_empty() {
        return Err(bad());
    }
    Ok(if bind.contains(':') {
        format!("[{bind}]:{port}")
    } else {
        format!("{bind}:{port}")
    })
}

/// The tunnels asked for: `-L`, `-R` and `-D`, each repeatable.
pub(crate) struct Specs {
    pub(crate) local: Vec<String>,
    pub(crate) remote: Vec<String>,
    pub(crate) dynamic: Vec<String>,
}

/// What keeps a tunnel up; dropped at the end.
enum Running {
    Local(rrssh::tunnel::LocalForward),
    Dynamic(rrssh::tunnel::DynamicForward),
    Remote(rrssh::tunnel::RemoteTunnel),
}

impl Running {
    /// Waits until the server forbids this tunnel (a local one), with its message.
    async fn prohibited(&self) -> String {
        match self {
            Self::Local(f) => f.prohibited().await,
            Self::Dynamic(_) | Self::Remote(_) => std::future::pending().await,
        }
    }
}

pub(super) async fn forward(
    login: &Login,
    reconnect: crate::args::Reconnect,
    target: &str,
    specs: &Specs,
) -> Result<ExitCode, String> {
    // Every spec is checked before anything is dialed.
    let local = specs
        .local
        .iter()
        .map(|s| parse_forward(s))
        .collect::<Result<Vec<_>, _>>()?;
    let remote = specs
        .remote
        .iter()
        .map(|spec| {
            let (listen, host, port) = parse_forward(spec)?;
            let (bind, bind_port) = listen
                .rsplit_once(':')
                .and_then(|(b, p)| Some((b.to_owned(), p.parse::<u16>().ok()?)))
                .ok_or_else(|| format!("bad forward `{spec}`: PORT must be a number"))?;
            Ok::<_, String>((bind, bind_port, host, port))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let dynamic = specs
        .dynamic
        .iter()
        .map(|s| parse_dynamic(s))
        .collect::<Result<Vec<_>, _>>()?;
    let target_parsed = Target::parse(target)?;
    server_only(&target_parsed, "tunnels")?;
    // Fail early on bad keys or host keys (waiting for a server not up yet), then stay
    // connected (SSH only: any SSH server).
    crate::login::first_connection(login, &target_parsed, Dialing::AnySsh, reconnect.backoff())
        .await?
        .close()
        .await;
    let client = crate::login::builder(login, &target_parsed, Dialing::AnySsh)?
        .backoff(reconnect.backoff())
        .plain()
        .connect_persistent();
    let mut running = Vec::new();
    for (listen, host, port) in &local {
        let fwd = client
            .forward_local(listen.as_str(), host, *port)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        note!(
            "forwarding {} to {host}:{port} through {target} (Ctrl-C stops)",
            fwd.local_addr()
        );
        running.push(Running::Local(fwd));
    }
    for listen in &dynamic {
        let fwd = client
            .forward_dynamic(listen.as_str())
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        note!(
            "SOCKS5 proxy on {}, connecting through {target} (Ctrl-C stops)",
            fwd.local_addr()
        );
        running.push(Running::Dynamic(fwd));
    }
    for (bind, bind_port, host, port) in &remote {
        let t = client
            .forward_remote(bind, *bind_port, host, *port)
            .await
            .map_err(|e| e.to_string())?;
        note!(
            "the server listens on {bind}:{}; forwarding to {host}:{port} here (Ctrl-C stops)",
            t.port()
        );
        running.push(Running::Remote(t));
    }
    let prohibited =
        futures_util::future::select_all(running.iter().map(|r| Box::pin(r.prohibited())));
    tokio::select! {
        () = follow(&client) => {}
        (why, _, _) = prohibited => {
            return Err(format!("{why}: stopping (the server's permissions, not a failure to retry)"));
        }
    }
    let (mut opened, mut refused) = (0, 0);
    for r in &running {
        match r {
            Running::Local(f) => (opened, refused) = (opened + f.opened(), refused + f.refused()),
            Running::Dynamic(f) => (opened, refused) = (opened + f.opened(), refused + f.refused()),
            Running::Remote(t) => tracing::debug!(port = t.port(), "remote tunnel stopped"),
        }
    }
    note!("stopped ({opened} connections carried, {refused} refused)");
    Ok(ExitCode::SUCCESS)
}
