//! A terminal in the browser, webssh-style: an rrssh server that serves shells, and a web page
//! (xterm.js) whose sessions reach it over SSH.
//!
//! ```sh
//! cargo run --example web_terminal                       # then open the printed address
//! cargo run --example web_terminal -- 127.0.0.1:9000     # serve the page elsewhere
//! ```
//!
//! Everything runs on 127.0.0.1 with keys generated in memory. The page needs the access token
//! in the printed address; closing the tab hangs up its shell.

use rrssh::keys::{AuthorizedKeys, HostKeyPolicy, generate_ed25519};
use rrssh::terminal::web::WebTerminal;
use rrssh::terminal::{Terminal, TerminalOptions};
use rrssh::{Client, Server};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7681".to_owned());
    let host = generate_ed25519("example-host");
    let me = generate_ed25519("example-browser");

    // The server: shells for the one key it knows, granted one by `pty` on its line.
    let line = format!("pty {}", me.public_key().to_openssh()?);
    let server = Server::new()
        .host_key(host.clone())
        .authorized_keys(AuthorizedKeys::parse(&line, "authorized_keys")?.owned_by("ops"))
        .terminal(Terminal::shell("/bin/sh"))
        .bind("127.0.0.1:0")
        .await?;

    // This process connects to it, and serves the page for that connection.
    let client = Client::builder(server.local_addr().to_string())
        .user("ops")
        .identity(me)
        .host_keys(HostKeyPolicy::Pinned(host.public_key().clone()))
        .connect()
        .await?;
    let web = WebTerminal::new(client).options(TerminalOptions::new().term("xterm-256color"));
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!(
        "open http://{}/?token={} (Ctrl-C stops)",
        listener.local_addr()?,
        web.access_token()
    );
    tokio::select! {
        r = axum::serve(listener, web.into_router()).into_future() => r?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
