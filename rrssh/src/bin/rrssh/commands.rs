//! The commands.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use futures_util::StreamExt;
use http_body_util::BodyExt;
use rrssh::client::{CallExt, Error};
use rrssh::hub::HubEvent;
use rrssh::hub::relay::{PEERS_PATH, PeerListing};
use rrssh::keys::{AuthorizedKeys, HostKeyPolicy};
use rrssh::routing::introspect::{ROUTES_PATH, RouteSummary};
use rrssh::{Client, Server};

use crate::args::{Cli, Command, Common};
use crate::output::{pretty, print_body};
use crate::target::Target;

pub(crate) async fn run(cli: Cli) -> Result<ExitCode, String> {
    let common = cli.common;
    match cli.command {
        Command::Keygen {
            file,
            comment,
            force,
        } => keygen(&file, comment, force),
        Command::Call {
            target,
            method,
            path,
            params,
            json,
            include,
        } => call(&common, &target, &method, &path, &params, json, include).await,
        Command::Stream {
            target,
            path,
            params,
            limit,
        } => stream(&common, &target, &path, &params, limit).await,
        Command::Routes { target } => routes(&common, &target).await,
        Command::Hub {
            listen,
            host_key,
            authorized_keys,
            gateway,
            gateway_tokens,
        } => {
            let gateway = gateway.zip(gateway_tokens);
            hub(&listen, &host_key, &authorized_keys, gateway).await
        }
        Command::Peers { target } => peers(&common, &target).await,
        Command::Shell { target, command } => shell(&common, &target, command).await,
        Command::Webshell {
            target,
            command,
            listen,
        } => webshell(&common, &target, command, &listen).await,
        Command::Forward {
            local,
            remote,
            target,
        } => match (local, remote) {
            (Some(spec), _) => forward(&common, &target, &spec, false).await,
            (None, Some(spec)) => forward(&common, &target, &spec, true).await,
            (None, None) => Err("give -L or -R".to_owned()),
        },
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

fn keygen(file: &Path, comment: Option<String>, force: bool) -> Result<ExitCode, String> {
    if !force && (file.exists() || pub_path(file).exists()) {
        return Err(format!(
            "{} already exists; refusing to overwrite it (use --force)",
            file.display()
        ));
    }
    let comment = comment.unwrap_or_else(|| {
        let user = std::env::var("USER").unwrap_or_else(|_| "rrssh".into());
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("{user}@{}", host.trim())
    });
    let key = rrssh::keys::generate_ed25519(&comment);
    rrssh::keys::write_key_pair(&key, file).map_err(|e| e.to_string())?;
    println!("wrote {} and {}", file.display(), pub_path(file).display());
    println!("{}", rrssh::keys::fingerprint(key.public_key()));
    Ok(ExitCode::SUCCESS)
}

fn pub_path(file: &Path) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

async fn connect(common: &Common, target: &Target) -> Result<Client, String> {
    builder(common, target)?
        .connect()
        .await
        .map_err(|e| e.to_string())
}

fn builder(common: &Common, target: &Target) -> Result<rrssh::transport::ClientBuilder, String> {
    let identity = common
        .identity
        .clone()
        .unwrap_or_else(|| home().join(".ssh/id_ed25519"));
    let key = rrssh::keys::load_private_key(&identity, None).map_err(|e| e.to_string())?;
    let known_hosts = common
        .known_hosts
        .clone()
        .unwrap_or_else(|| home().join(".ssh/known_hosts"));
    let policy = if common.accept_new {
        HostKeyPolicy::AcceptNew(known_hosts)
    } else {
        HostKeyPolicy::Strict(known_hosts)
    };
    let mut builder = Client::builder(target.addr.clone())
        .identity(key)
        .host_keys(policy);
    if let Some(u) = &target.user {
        builder = builder.user(u.clone());
    }
    Ok(builder)
}

/// `[BIND:]PORT:HOST:HOSTPORT`, as `ssh -L` and `ssh -R` take it; BIND defaults to 127.0.0.1.
fn parse_forward(spec: &str) -> Result<(String, String, u16), String> {
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

/// Prints a line, ignoring a closed stdout (a long-running command must not die of it).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
        let _ = out.flush();
    }};
}

async fn forward(
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

async fn webshell(
    common: &Common,
    target: &str,
    command: Option<String>,
    listen: &str,
) -> Result<ExitCode, String> {
    let t = Target::parse(target)?;
    if t.peer.is_some() {
        return Err(
            "terminals are opened on a server (ssh://…), not on a peer behind a hub".to_owned(),
        );
    }
    // Fail early on bad keys or host keys, then stay connected.
    connect(common, &t).await?.close().await;
    let client = builder(common, &t)?.connect_persistent();
    let mut options = rrssh::terminal::TerminalOptions::new();
    if let Some(c) = command {
        options = options.command(c);
    }
    let web = rrssh::terminal::web::WebTerminal::persistent(client).options(options);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    say!(
        "terminal on {target}: open http://{addr}/?token={} (Ctrl-C stops)",
        web.access_token()
    );
    let app = web.into_router();
    tokio::select! {
        r = axum::serve(listener, app) => r.map_err(|e| e.to_string())?,
        _ = tokio::signal::ctrl_c() => {}
    }
    say!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// `key=value` pairs as a query string.
fn query(params: &[String]) -> Result<String, String> {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let mut parts = Vec::new();
    for p in params {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("`{p}` is not key=value"))?;
        parts.push(format!(
            "{}={}",
            utf8_percent_encode(k, NON_ALPHANUMERIC),
            utf8_percent_encode(v, NON_ALPHANUMERIC)
        ));
    }
    Ok(parts.join("&"))
}

fn with_query(path: String, params: &[String]) -> Result<String, String> {
    let q = query(params)?;
    Ok(if q.is_empty() {
        path
    } else if path.contains('?') {
        format!("{path}&{q}")
    } else {
        format!("{path}?{q}")
    })
}

fn read_json_arg(arg: &str) -> Result<Vec<u8>, String> {
    let text = if arg == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| e.to_string())?;
        s
    } else if let Some(file) = arg.strip_prefix('@') {
        std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))?
    } else {
        arg.to_owned()
    };
    serde_json::from_str::<serde_json::Value>(&text)
        .map_err(|e| format!("--json is not valid JSON: {e}"))?;
    Ok(text.into_bytes())
}

fn exit_for(status: u16) -> ExitCode {
    match status {
        200..=299 => ExitCode::SUCCESS,
        400..=499 => ExitCode::from(4),
        _ => ExitCode::from(5),
    }
}

#[allow(clippy::too_many_arguments)]
async fn call(
    common: &Common,
    target: &str,
    method: &str,
    path: &str,
    params: &[String],
    json: Option<String>,
    include: bool,
) -> Result<ExitCode, String> {
    let target = Target::parse(target)?;
    let method = rrssh::method::parse(&method.to_ascii_uppercase())
        .ok_or_else(|| format!("`{method}` is not a method"))?;
    let body = json.as_deref().map(read_json_arg).transpose()?;
    let client = connect(common, &target).await?;
    let path = with_query(target.path(path), params)?;
    let mut req = client.request(method, &path);
    if let Some(b) = body {
        req = req
            .header(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            )
            .body(b);
    }
    if let Some(t) = common.timeout {
        req = req.timeout(t);
    }
    let res = match req.send().await {
        Ok(r) => r,
        Err(Error::Status { status, body }) => {
            eprintln!("{}", String::from_utf8_lossy(&body.to_json()));
            return Ok(exit_for(status.as_u16()));
        }
        Err(e) => return Err(e.to_string()),
    };
    let status = res.status();
    if include {
        println!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        for (k, v) in res.headers() {
            println!("{k}: {}", v.to_str().unwrap_or("<binary>"));
        }
        println!();
    }
    let bytes = res
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if status.is_success() {
        print_body(&bytes, common.color).map_err(|e| e.to_string())?;
    } else {
        eprintln!("{}", String::from_utf8_lossy(&bytes).trim_end());
    }
    client.close().await;
    Ok(exit_for(status.as_u16()))
}

async fn stream(
    common: &Common,
    target: &str,
    path: &str,
    params: &[String],
    limit: Option<u64>,
) -> Result<ExitCode, String> {
    use std::io::Write;
    let target = Target::parse(target)?;
    let client = connect(common, &target).await?;
    let path = with_query(target.path(path), params)?;
    let mut req = client.stream(&path);
    if let Some(t) = common.timeout {
        req = req.timeout(t);
    }
    let mut items = match req.items::<serde_json::Value>().await {
        Ok(s) => s,
        Err(Error::Status { status, body }) => {
            eprintln!("{}", String::from_utf8_lossy(&body.to_json()));
            return Ok(exit_for(status.as_u16()));
        }
        Err(e) => return Err(e.to_string()),
    };
    let mut seen = 0u64;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let code = loop {
        if limit.is_some_and(|l| seen >= l) {
            break ExitCode::SUCCESS;
        }
        let next = tokio::select! {
            n = items.next() => n,
            _ = &mut ctrl_c => break ExitCode::from(130),
        };
        match next {
            Some(Ok(item)) => {
                seen += 1;
                let mut out = std::io::stdout().lock();
                writeln!(out, "{item}").map_err(|e| e.to_string())?;
                out.flush().map_err(|e| e.to_string())?;
            }
            Some(Err(Error::Status { status, body })) => {
                eprintln!("{}", String::from_utf8_lossy(&body.to_json()));
                break exit_for(status.as_u16());
            }
            Some(Err(e)) => return Err(e.to_string()),
            None => break ExitCode::SUCCESS,
        }
    };
    // Dropping the stream cancels the call on the server.
    drop(items);
    client.close().await;
    Ok(code)
}

async fn get_json<T: serde::de::DeserializeOwned + Send>(
    client: &Client,
    path: &str,
) -> Result<T, String> {
    client.get(path).receive::<T>().await.map_err(|e| match e {
        Error::Status { body, .. } => String::from_utf8_lossy(&body.to_json()).into_owned(),
        e => e.to_string(),
    })
}

async fn routes(common: &Common, target: &str) -> Result<ExitCode, String> {
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

async fn peers(common: &Common, target: &str) -> Result<ExitCode, String> {
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

async fn hub(
    listen: &str,
    host_key: &Path,
    authorized: &Path,
    gateway: Option<(String, std::path::PathBuf)>,
) -> Result<ExitCode, String> {
    let key =
        rrssh::keys::load_or_generate_ed25519(host_key, "rrssh-hub").map_err(|e| e.to_string())?;
    let fp = rrssh::keys::fingerprint(key.public_key());
    let authorized = AuthorizedKeys::load(authorized).map_err(|e| e.to_string())?;
    let hub = Server::new()
        .host_key(key)
        .authorized_keys(authorized)
        .relay(true)
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

/// Puts the terminal on stdin in raw mode until dropped.
struct RawMode(rustix::termios::Termios);

impl RawMode {
    fn enter() -> Result<Self, String> {
        let stdin = rustix::stdio::stdin();
        let saved = rustix::termios::tcgetattr(stdin).map_err(|e| e.to_string())?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(stdin, rustix::termios::OptionalActions::Now, &raw)
            .map_err(|e| e.to_string())?;
        Ok(Self(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            rustix::stdio::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.0,
        );
    }
}

/// The size of the terminal on stdin, if it is one.
fn window_size() -> Option<(u16, u16)> {
    let ws = rustix::termios::tcgetwinsize(rustix::stdio::stdin()).ok()?;
    (ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col, ws.ws_row))
}

async fn shell(common: &Common, target: &str, command: Option<String>) -> Result<ExitCode, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = Target::parse(target)?;
    if t.peer.is_some() {
        return Err(
            "terminals are opened on a server (ssh://…), not on a peer behind a hub".to_owned(),
        );
    }
    let client = connect(common, &t).await?;
    let tty = rustix::termios::isatty(rustix::stdio::stdin());
    let (cols, rows) = window_size().unwrap_or((80, 24));
    let mut options = rrssh::terminal::TerminalOptions::new()
        .term(std::env::var("TERM").unwrap_or_else(|_| "xterm-256color".to_owned()))
        .size(cols, rows);
    if let Some(c) = command {
        options = options.command(c);
    }
    let rrssh::terminal::TerminalSession { input, mut output } =
        client.terminal(options).await.map_err(|e| e.to_string())?;
    let raw = if tty { Some(RawMode::enter()?) } else { None };
    let input = std::sync::Arc::new(input);
    let typing = tokio::spawn({
        let input = input.clone();
        async move {
            let mut stdin = tokio::io::stdin();
            let mut buf = vec![0u8; 4096];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        let _ = input.eof().await;
                        break;
                    }
                    Ok(n) => {
                        if input
                            .write(bytes::Bytes::copy_from_slice(&buf[..n]))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
        }
    });
    let resizing = tokio::spawn({
        let input = input.clone();
        async move {
            let Ok(mut winch) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
            else {
                return;
            };
            while winch.recv().await.is_some() {
                if let Some((c, r)) = window_size() {
                    let _ = input.resize(c, r).await;
                }
            }
        }
    });
    let mut stdout = tokio::io::stdout();
    while let Some(bytes) = output.next().await {
        if stdout.write_all(&bytes).await.is_err() {
            break;
        }
        let _ = stdout.flush().await;
    }
    typing.abort();
    resizing.abort();
    drop(raw);
    let code = output.exit_status().unwrap_or(255);
    // The blocking read of stdin may still be waiting: leave without waiting for it.
    #[allow(
        clippy::exit,
        reason = "stdin's blocking read must not keep the process alive"
    )]
    std::process::exit(i32::try_from(code).unwrap_or(255));
}
