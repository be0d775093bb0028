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
    pub(super) record_terminals: Option<std::path::PathBuf>,
    pub(super) terminal_idle: Option<Duration>,
    pub(super) permit_open: Option<String>,
    pub(super) permit_listen: Option<String>,
    pub(super) relay: bool,
    pub(super) cluster: Option<rrssh::cluster::Cluster>,
    pub(super) web_terminal: bool,
}

pub(super) async fn serve(serving: Serving, extra: Extra, what: &str) -> Result<ExitCode, String> {
    let check = serving.check_config;
    let key = if check && serving.create_host_key && !serving.host_key.exists() {
        // Checking makes nothing: a key like the one that would be made stands in for it.
        say!(
            "# --host-key {}: none yet; it would be made",
            serving.host_key.display()
        );
        rrssh::keys::generate_ed25519("rrssh-check")
    } else {
        host_key(&serving, what)?
    };
    let fp = rrssh::keys::fingerprint(key.public_key());
    let host_public = key.public_key().clone();
    // Keys without `rrssh-users` log in as the account running the server, as the keys in its
    // ~/.ssh/authorized_keys would under sshd.
    let owner = rrssh::transport::local_user().unwrap_or_else(|| "rrssh".to_owned());
    let mut own_keys = AuthorizedKeys::default();
    // The web terminal logs in to this server over loopback with a key of its own, made now
    // and allowed terminals only.
    let web_key = extra
        .web_terminal
        .then(|| rrssh::keys::generate_ed25519("rrssh-web-terminal"));
    if let Some(k) = &web_key {
        let line = format!(
            "restrict,pty,from=\"127.0.0.1,::1\" {}",
            k.public_key().to_openssh().map_err(|e| e.to_string())?
        );
        own_keys =
            AuthorizedKeys::parse(&line, "the web terminal's key").map_err(|e| e.to_string())?;
    }
    let mut server = Server::new().access(access(&serving, &owner, &own_keys)?);
    let metrics = serving
        .admin
        .as_ref()
        .map(|_| rrssh::metrics::Metrics::new());
    if let Some(m) = &metrics {
        server = server.observe(std::sync::Arc::new(m.clone()));
    }
    let audit = match &serving.audit {
        Some(path) if check => {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            if dir.is_some_and(|d| !d.is_dir()) {
                return Err(format!("--audit {}: no such directory", path.display()));
            }
            None
        }
        Some(path) => Some(
            rrssh::audit::AuditLog::open(path)
                .map_err(|e| format!("--audit {}: {e}", path.display()))?,
        ),
        None => None,
    };
    if let Some(a) = &audit {
        server = server.observe(std::sync::Arc::new(a.clone()));
    }
    if let Some(path) = &serving.host_certificate {
        let cert = rrssh::keys::Certificate::read_file(path)
            .map_err(|e| format!("--host-certificate {}: {e}", path.display()))?;
        if cert.public_key() != key.public_key().key_data() {
            return Err(format!(
                "--host-certificate {}: it certifies another key than --host-key",
                path.display()
            ));
        }
        server = server.host_certificate(cert);
    }
    if let Some(path) = &serving.renew_certificates {
        let ca = rrssh::keys::load_private_key(path, None)
            .map_err(|e| format!("--renew-certificates: {e}"))?;
        server = server.renew_certificates(ca, serving.renewal_ttl);
    }
    if let Some(c) = extra.cluster {
        note!("joining the cluster as hub {}", c.id());
        server = server.cluster(c);
    }
    let mut offers = Vec::new();
    if let Some(shell) = &extra.terminal {
        let mut t = rrssh::terminal::Terminal::shell(shell);
        if let Some(idle) = extra.terminal_idle {
            t = t.idle_timeout(idle);
        }
        if let Some(dir) = &extra.record_terminals {
            t = t.record(dir);
            t.check_recordings()
                .map_err(|e| format!("--record-terminals {}: {e}", dir.display()))?;
        }
        let to = if extra.terminal_for_all_keys {
            t = t.for_every_key();
            "every key not forbidden one"
        } else {
            "keys granted one"
        };
        server = server.terminal(t);
        let recorded = match &extra.record_terminals {
            Some(dir) => format!(", recorded in {}", dir.display()),
            None => String::new(),
        };
        offers.push(format!("terminals ({shell}) for {to}{recorded}"));
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
    if check {
        if serving.https.is_some() && serving.acme.is_none() {
            https_certificate(&serving)?;
        }
        for (flag, addr) in [
            ("--listen", Some(&serving.listen)),
            ("--gateway", serving.gateway.as_ref()),
            ("--https", serving.https.as_ref()),
            ("--ws", serving.ws.as_ref()),
            ("--admin", serving.admin.as_ref()),
        ] {
            if let Some(addr) = addr {
                check_address(flag, addr)?;
            }
        }
        let offers: String = offers.iter().map(|o| format!("; {o}")).collect();
        say!("# configuration OK: {what} with host key {fp}{offers}");
        return Ok(ExitCode::SUCCESS);
    }
    let hub = server
        .host_key(key)
        .relay(extra.relay)
        .open_registration(serving.open_registration)
        .per_key_memory(serving.per_key_memory)
        .process_memory(serving.process_memory)
        .max_calls_per_key(serving.max_calls_per_key)
        .bind(&serving.listen)
        .await
        .map_err(|e| match e {
            rrssh::server::ServerError::Bind(io) => {
                let hint = match io.kind() {
                    std::io::ErrorKind::InvalidInput => " (give HOST:PORT, e.g. 127.0.0.1:8022)",
                    _ => "",
                };
                format!("--listen {}: cannot listen: {io}{hint}", serving.listen)
            }
            e => e.to_string(),
        })?;
    let offers = if offers.is_empty() {
        String::new()
    } else {
        format!("; {}", offers.join(", "))
    };
    note!(
        "{what} listening on {} (host key {fp}){offers}",
        hub.local_addr()
    );
    let gateway_routes = || {
        tokens.clone().map(|t| {
            rrssh::gateway::Gateway::new(hub.registry())
                .tokens(t)
                .into_router()
        })
    };
    let (certificate, _acme) = match &serving.https {
        Some(addr) => {
            let (certificate, acme) = https_certificate(&serving)?;
            let terminal = web_key.map(|k| web_terminal(k, host_public.clone(), &hub, &owner));
            let routes = match (gateway_routes(), &terminal) {
                (Some(g), Some(t)) => Some(g.merge(t.0.clone())),
                (g, t) => g.or_else(|| t.as_ref().map(|t| t.0.clone())),
            };
            let local = web_listener(addr, Some(certificate.clone()), routes, &hub)
                .await
                .map_err(|e| format!("--https {addr}: {e}"))?;
            note!(
                "{what} listening on {local} for wss://, raw SSH{} (TLS)",
                if tokens.is_some() {
                    " and the gateway on https://"
                } else {
                    ""
                }
            );
            if let Some((_, token)) = terminal {
                note!("web terminal on https://{local}/terminal/?token={token}");
            }
            (Some(certificate), acme)
        }
        None => (None, None),
    };
    if let Some(addr) = &serving.ws {
        let local = web_listener(addr, None, gateway_routes(), &hub)
            .await
            .map_err(|e| format!("--ws {addr}: {e}"))?;
        note!(
            "{what} listening on {local} for ws://, raw SSH{} (no TLS)",
            if tokens.is_some() {
                " and the gateway on http://"
            } else {
                ""
            }
        );
    }
    if let Some((addr, tokens)) = serving.gateway.clone().zip(tokens.clone()) {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("gateway: cannot listen on {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        note!(
            "gateway listening on http://{local} ({} tokens)",
            tokens.len()
        );
        let gw = rrssh::gateway::Gateway::new(hub.registry()).tokens(tokens);
        tokio::spawn(async move {
            if let Err(e) = gw.serve(listener).await {
                tracing::error!(target: "rrssh::cli", "gateway stopped: {e}");
            }
        });
    }
    let draining = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(m) = &metrics {
        m.watch(&hub);
    }
    if let Some(a) = &audit {
        a.watch(&hub);
    }
    if let (Some(addr), Some(m)) = (&serving.admin, &metrics) {
        let local = admin(addr, m.clone(), draining.clone()).await?;
        note!("admin listening on http://{local} (/metrics, /healthz, /readyz)");
    }
    let mut events = hub.events();
    use tokio::signal::unix::{SignalKind, signal};
    let watch = |kind: SignalKind, name: &str| {
        signal(kind).map_err(|e| format!("cannot watch {name}: {e}"))
    };
    let mut interrupts = watch(SignalKind::interrupt(), "SIGINT")?;
    let mut terminations = watch(SignalKind::terminate(), "SIGTERM")?;
    let mut hangups = watch(SignalKind::hangup(), "SIGHUP")?;
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let stopped_by = loop {
        tokio::select! {
            _ = interrupts.recv() => break "SIGINT",
            _ = terminations.recv() => break "SIGTERM",
            _ = hangups.recv() => {
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Reloading]);
                let reloaded = access(&serving, &owner, &own_keys)
                    .and_then(|a| hub.reload_access(a).map_err(|e| e.to_string()));
                match reloaded {
                    Ok(()) => note!("SIGHUP: authorized keys, CAs and revoked keys reloaded"),
                    Err(e) => note!(warn, "SIGHUP: keys not reloaded, the old ones stay: {e}"),
                }
                if let (Some(path), Some(t)) = (&serving.gateway_tokens, &tokens) {
                    match rrssh::gateway::Tokens::read_file(path) {
                        Ok(new) => { t.replace(&new); note!("SIGHUP: gateway tokens reloaded ({})", new.len()) }
                        Err(e) => note!(warn, "SIGHUP: gateway tokens not reloaded, the old ones stay: {e}"),
                    }
                }
                match certificate.as_ref().map(|c| c.reload()) {
                    Some(Ok(())) => note!("SIGHUP: certificate reloaded"),
                    Some(Err(e)) => note!(warn, "SIGHUP: certificate not reloaded, the old one stays: {e}"),
                    None => {}
                }
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
            },
            e = events.next() => match e {
                Some(HubEvent::Connected { name, peer }) => note!(
                    "connected    {} {} {}",
                    name.as_deref().unwrap_or("-"), peer.user(), peer.fingerprint()
                ),
                Some(HubEvent::Disconnected { name, peer, reason }) => note!(
                    "disconnected {} {} ({reason})",
                    name.as_deref().unwrap_or("-"), peer.fingerprint()
                ),
                Some(HubEvent::Refused { name, peer }) => note!(
                    "refused      {name} {} (the name is not this key's)",
                    peer.fingerprint()
                ),
                Some(_) => {}
                None => break "the hub's end",
            },
        }
    };
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    draining.store(true, std::sync::atomic::Ordering::Release);
    let grace = serving.grace;
    note!(
        "{what} stopping ({stopped_by}): no new connections, calls in flight have {}s to finish",
        grace.as_secs_f64()
    );
    let drained = hub.shutdown(grace);
    tokio::pin!(drained);
    let code = tokio::select! {
        cut = &mut drained => {
            note!("{what} stopped ({cut} calls cut)");
            ExitCode::SUCCESS
        }
        _ = interrupts.recv() => { note!("{what} stopped at once (second SIGINT)"); ExitCode::from(130) }
        _ = terminations.recv() => { note!("{what} stopped at once (second SIGTERM)"); ExitCode::from(143) }
    };
    if let Some(a) = &audit {
        // Let the writer thread put the last lines on disk.
        a.flush_for(Duration::from_secs(2));
    }
    Ok(code)
}

/// Refuses an address that could never be listened on (`--check-config` binds nothing).
pub(super) fn check_address(flag: &str, addr: &str) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    match addr.to_socket_addrs().map(|mut all| all.next()) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(format!("{flag} {addr}: names no address")),
        Err(e) => Err(format!("{flag} {addr}: {e} (give HOST:PORT)")),
    }
}

/// Who may log in, as the files say now: `--authorized-keys` (its keys without `rrssh-users`
/// log in as `owner`), `own` keys of the server's own, `--trusted-user-ca`, `--revoked-keys`.
fn access(
    serving: &Serving,
    owner: &str,
    own: &AuthorizedKeys,
) -> Result<rrssh::keys::Access, String> {
    let mut authorized = AuthorizedKeys::load(&serving.authorized_keys)
        .map_err(|e| format!("--authorized-keys: {e}"))?
        .owned_by(owner.to_owned());
    own.iter().for_each(|k| authorized.push(k.clone()));
    let mut access = rrssh::keys::Access::new(authorized);
    if let Some(path) = &serving.trusted_user_ca {
        let cas = AuthorizedKeys::load(path).map_err(|e| format!("--trusted-user-ca: {e}"))?;
        access = access.trusted_user_ca_keys(cas.iter().map(|k| k.key.clone()));
    }
    if let Some(path) = &serving.revoked_keys {
        let revoked =
            rrssh::keys::RevokedKeys::load(path).map_err(|e| format!("--revoked-keys: {e}"))?;
        access = access.revoked_keys(revoked);
    }
    Ok(access)
}

/// The admin listener (`--admin`): `/metrics` (Prometheus text), `/healthz` (200 while the
/// process runs), `/readyz` (200 until it starts draining, then 503).
async fn admin(
    addr: &str,
    metrics: rrssh::metrics::Metrics,
    draining: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<std::net::SocketAddr, String> {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--admin: cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let text = metrics.render();
                async move {
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        text,
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let draining = draining.load(std::sync::atomic::Ordering::Acquire);
                async move {
                    if draining {
                        (http::StatusCode::SERVICE_UNAVAILABLE, "draining\n")
                    } else {
                        (http::StatusCode::OK, "ready\n")
                    }
                }
            }),
        );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(target: "rrssh::cli", "admin listener stopped: {e}");
        }
    });
    Ok(local)
}

/// The host key at `--host-key`: made there first with `--create-host-key`, else it must exist.
fn host_key(serving: &Serving, what: &str) -> Result<rrssh::keys::PrivateKey, String> {
    let path = &serving.host_key;
    if serving.create_host_key {
        return rrssh::keys::load_or_generate_ed25519(path, &format!("rrssh-{what}"))
            .map_err(|e| format!("--host-key: {e}"));
    }
    rrssh::keys::load_private_key(path, None).map_err(|e| match e {
        rrssh::keys::KeyError::Missing { .. } => format!(
            "--host-key {}: no such file; give --create-host-key to make a new host key there \
             (clients that knew the old one will refuse the new one)",
            path.display()
        ),
        e => format!("--host-key: {e}"),
    })
}

/// The `--https` certificate: from `--tls-cert` and `--tls-key`, or obtained and renewed by
/// ACME (`--acme`), whose progress is printed as it goes.
fn https_certificate(
    serving: &Serving,
) -> Result<
    (
        std::sync::Arc<rrssh::tls::ServerCertificate>,
        Option<rrssh::tls::AcmeTask>,
    ),
    String,
> {
    if let (Some(cert), Some(key)) = (&serving.tls_cert, &serving.tls_key) {
        let certificate =
            rrssh::tls::ServerCertificate::load(cert, key).map_err(|e| format!("--https: {e}"))?;
        return Ok((certificate, None));
    }
    let (Some(names), Some(cache)) = (&serving.acme, &serving.acme_cache) else {
        return Err("--https needs --tls-cert and --tls-key, or --acme NAMES".to_owned());
    };
    let names: Vec<&str> = names
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    let directory = serving
        .acme_directory
        .as_deref()
        .unwrap_or(rrssh::tls::LETS_ENCRYPT);
    let mut acme = rrssh::tls::Acme::new(directory, names.iter().copied(), cache);
    if let Some(email) = &serving.acme_email {
        acme = acme.contact(email);
    }
    if let Some(ca) = &serving.acme_ca {
        acme = acme.directory_ca(ca);
    }
    let (certificate, task) = acme.start().map_err(|e| format!("--acme: {e}"))?;
    let mut states = task.watch();
    let (names, directory) = (names.join(","), directory.to_owned());
    tokio::spawn(async move {
        loop {
            match states.borrow_and_update().clone() {
                rrssh::tls::AcmeState::Pending => {
                    note!("certificate for {names}: asking {directory}");
                }
                rrssh::tls::AcmeState::Issued { not_after } => {
                    let left = not_after
                        .duration_since(std::time::SystemTime::now())
                        .unwrap_or_default();
                    note!(
                        "certificate for {names}: served, valid for {} more days",
                        left.as_secs() / 86_400
                    );
                }
                rrssh::tls::AcmeState::Failed { error } => {
                    note!(
                        warn,
                        "certificate for {names}: not issued, trying again later: {error}"
                    );
                }
                _ => {}
            }
            if states.changed().await.is_err() {
                return;
            }
        }
    });
    Ok((certificate, Some(task)))
}

/// The web terminal (`--web-terminal`): pages at `/terminal/` open terminals on this server
/// through one persistent connection over loopback, logged in as `owner` with `key`. Any host
/// is answered: it is served only behind TLS. Returns its routes and access token.
fn web_terminal(
    key: rrssh::keys::PrivateKey,
    host_key: rrssh::keys::PublicKey,
    hub: &rrssh::Hub,
    owner: &str,
) -> (axum::Router, String) {
    let mut addr = hub.local_addr();
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let client = rrssh::Client::builder(addr.to_string())
        .user(owner)
        .identity(key)
        .host_keys(rrssh::keys::HostKeyPolicy::Pinned(host_key))
        .no_proxy()
        .connect_persistent();
    let web = rrssh::terminal::web::WebTerminal::persistent(client).any_host();
    let token = web.access_token().to_owned();
    (web.into_router_at("/terminal"), token)
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
