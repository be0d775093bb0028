//! `rrssh shell` and `rrssh webshell`: a terminal on a server, here or in the browser.

use super::*;

pub(super) async fn webshell(
    login: &Login,
    reconnect: crate::args::Reconnect,
    target: &str,
    command: Option<String>,
    listen: &str,
) -> Result<ExitCode, String> {
    let t = Target::parse(target)?;
    server_only(&t, "terminals")?;
    // Fail early on bad keys or host keys, then stay connected (SSH only: any SSH server).
    crate::login::first_connection(login, &t, Dialing::AnySsh, reconnect.backoff())
        .await?
        .close()
        .await;
    let client = crate::login::builder(login, &t, Dialing::AnySsh)?
        .plain()
        .backoff(reconnect.backoff())
        .connect_persistent();
    let mut options = rrssh::terminal::TerminalOptions::new();
    if let Some(c) = command {
        options = options.command(c);
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    // The address it listens on is one it answers for, loopback or not.
    let web = rrssh::terminal::web::WebTerminal::persistent(client)
        .options(options)
        .allow_host(addr.ip().to_string());
    note!(
        "terminal on {target}: open http://{addr}/?token={} (Ctrl-C stops)",
        web.access_token()
    );
    let app = web.into_router();
    tokio::select! {
        r = axum::serve(listener, app) => r.map_err(|e| e.to_string())?,
        _ = tokio::signal::ctrl_c() => {}
    }
    note!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Puts the terminal on stdin in raw mode until dropped.
pub(super) struct RawMode(rustix::termios::Termios);

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
pub(super) fn window_size() -> Option<(u16, u16)> {
    let ws = rustix::termios::tcgetwinsize(rustix::stdio::stdin()).ok()?;
    (ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col, ws.ws_row))
}

pub(super) async fn shell(
    login: &Login,
    target: &str,
    command: Option<String>,
    pty: bool,
    idle_timeout: Option<Duration>,
) -> Result<ExitCode, String> {
    use rrssh::terminal::OutputPart;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = Target::parse(target)?;
    server_only(&t, "terminals")?;
    let client = crate::login::connect(login, &t, Dialing::AnySsh).await?;
    let tty = rustix::termios::isatty(rustix::stdio::stdin());
    let (cols, rows) = window_size().unwrap_or((80, 24));
    let mut options = rrssh::terminal::TerminalOptions::new()
        .pty(pty)
        .term(std::env::var("TERM").unwrap_or_else(|_| "xterm-256color".to_owned()))
        .size(cols, rows);
    if let Some(c) = command {
        options = options.command(c);
    }
    if let Some(idle) = idle_timeout {
        options = options.idle_timeout(idle);
    }
    let rrssh::terminal::TerminalSession { input, mut output } =
        client.terminal(options).await.map_err(|e| e.to_string())?;
    let raw = if tty && pty {
        Some(RawMode::enter()?)
    } else {
        None
    };
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
    let mut stderr = tokio::io::stderr();
    while let Some(part) = output.next_part().await {
        let written = match part {
            OutputPart::Stderr(bytes) => stderr.write_all(&bytes).await,
            OutputPart::Stdout(bytes) => match stdout.write_all(&bytes).await {
                Ok(()) => stdout.flush().await,
                Err(e) => Err(e),
            },
            _ => Ok(()),
        };
        if written.is_err() {
            break;
        }
    }
    typing.abort();
    resizing.abort();
    drop(raw);
    if output.timed_out() {
        eprintln!(
            "rrssh: idle for {:?}; hung up",
            idle_timeout.unwrap_or_default()
        );
    }
    let code = output.exit_status().unwrap_or(255);
    // The blocking read of stdin may still be waiting: leave without waiting for it.
    #[allow(
        clippy::exit,
        reason = "stdin's blocking read must not keep the process alive"
    )]
    std::process::exit(i32::try_from(code).unwrap_or(255));
}
