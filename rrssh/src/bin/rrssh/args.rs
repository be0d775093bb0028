//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Calls rrssh services over SSH: REST-style JSON APIs with SSH keys.
#[derive(Debug, Parser)]
#[command(name = "rrssh", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub(crate) struct Common {
    /// Private key to authenticate with [default: ~/.ssh/id_ed25519].
    #[arg(short = 'i', long, global = true, value_name = "KEY")]
    pub(crate) identity: Option<PathBuf>,
    /// known_hosts file to check host keys against [default: ~/.ssh/known_hosts].
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) known_hosts: Option<PathBuf>,
    /// Record the host key of an unknown host (a changed key is still refused).
    #[arg(long, global = true)]
    pub(crate) accept_new: bool,
    /// Time budget of the call (e.g. 500ms, 5s, 2m); it travels with the call.
    #[arg(long, global = true, value_parser = parse_duration, value_name = "DURATION")]
    pub(crate) timeout: Option<Duration>,
    /// Pretty, coloured JSON: auto (on a terminal), always, never.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    pub(crate) color: Color,
    /// Log what happens (to stderr); repeat for more.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
}

/// When to print pretty, coloured JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Color {
    /// On a terminal.
    Auto,
    /// Always.
    Always,
    /// Never: the body as received.
    Never,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Makes an ed25519 key pair in OpenSSH's format and prints its fingerprint.
    Keygen {
        /// Where to write the private key (the public one gets `.pub`).
        #[arg(short = 'f', long = "file", default_value = "id_ed25519")]
        file: PathBuf,
        /// The key's comment.
        #[arg(short = 'C', long = "comment")]
        comment: Option<String>,
        /// Overwrite an existing key.
        #[arg(long)]
        force: bool,
    },
    /// Calls a route: rrssh call ssh://host:8022 GET /users/7 full=true
    Call {
        /// ssh://[user@]host[:port] or hub://[user@]host[:port]/PEER
        target: String,
        /// GET, POST, PUT, PATCH, DELETE (or korv's STORE, UPDATE).
        method: String,
        /// The path, e.g. /users/7.
        path: String,
        /// Query parameters, key=value (httpie style).
        params: Vec<String>,
        /// JSON body: inline, @file, or - for stdin.
        #[arg(long, value_name = "BODY")]
        json: Option<String>,
        /// Also print the status and headers.
        #[arg(short = 'I', long = "include")]
        include: bool,
    },
    /// Streams a route's items as NDJSON as they arrive; Ctrl-C cancels the call.
    Stream {
        /// ssh://[user@]host[:port] or hub://[user@]host[:port]/PEER
        target: String,
        /// The path, e.g. /ticks.
        path: String,
        /// Query parameters, key=value.
        params: Vec<String>,
        /// Stop (and cancel the call) after this many items.
        #[arg(long, short = 'n')]
        limit: Option<u64>,
    },
    /// Lists a server's routes (method, path, summary, arguments, output).
    Routes {
        /// ssh://[user@]host[:port] or hub://[user@]host[:port]/PEER
        target: String,
    },
    /// Runs a hub: services connect to it, callers reach them through it.
    Hub {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8022")]
        listen: String,
        /// The hub's host key (created if missing).
        #[arg(long, value_name = "FILE")]
        host_key: PathBuf,
        /// Who may connect, and with `rrssh-scopes="call:NAME"` which peers a caller may call;
        /// keys without `rrssh-users="NAME,…"` log in as the user running the hub.
        #[arg(long, value_name = "FILE")]
        authorized_keys: PathBuf,
        /// Also serve the HTTP gateway on this address (`GET /peers`, `METHOD /peers/NAME/PATH`).
        #[arg(long, value_name = "ADDR", requires = "gateway_tokens")]
        gateway: Option<String>,
        /// The gateway's bearer tokens: lines of `NAME TOKEN [call:PEER,…]`.
        #[arg(long, value_name = "FILE", requires = "gateway")]
        gateway_tokens: Option<PathBuf>,
        /// Let keys without `rrssh-services="…"` register service names (never one another
        /// key's `rrssh-services` lists).
        #[arg(long)]
        open_registration: bool,
        /// Join a cluster of hubs on this NATS server (with JetStream, 2.10 or newer).
        #[arg(long, value_name = "nats://HOST:PORT")]
        cluster: Option<String>,
        /// This hub's id in the cluster (default random).
        #[arg(long, value_name = "ID", requires = "cluster")]
        hub_id: Option<String>,
    },
    /// A persistent TCP tunnel, like `ssh -N -L` or `ssh -N -R`, reconnecting as needed, until
    /// Ctrl-C.
    Forward {
        /// -L [BIND:]PORT:HOST:HOSTPORT: listen here, connect to HOST:HOSTPORT from the server
        #[arg(
            short = 'L',
            value_name = "SPEC",
            required_unless_present = "remote",
            conflicts_with = "remote"
        )]
        local: Option<String>,
        /// -R [BIND:]PORT:HOST:HOSTPORT: the server listens, connect to HOST:HOSTPORT from here
        #[arg(short = 'R', value_name = "SPEC")]
        remote: Option<String>,
        /// ssh://[user@]host[:port] of the server
        target: String,
    },
    /// Opens a terminal on a server, like `ssh -t`: a shell, or COMMAND; exits with its status.
    Shell {
        /// ssh://[user@]host[:port] of the server
        target: String,
        /// A command to run instead of a shell.
        command: Option<String>,
    },
    /// Serves a terminal on a server in the browser (xterm.js), until Ctrl-C; prints the
    /// address to open, which carries a random access token.
    Webshell {
        /// ssh://[user@]host[:port] of the server
        target: String,
        /// A command to run instead of a shell.
        command: Option<String>,
        /// Address to serve the page on (keep it on loopback, or behind a TLS proxy).
        #[arg(long, default_value = "127.0.0.1:7681")]
        listen: String,
    },
    /// Lists the peers connected to a hub (those this key may call).
    Peers {
        /// ssh://[user@]host[:port] of the hub
        target: String,
    },
}

/// `500ms`, `5s`, `2m`, or plain seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: f64 = num.parse().map_err(|_| format!("not a duration: `{s}`"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{s}` (use ms, s, m or h)"
            ));
        }
    };
    // At most a year: a deadline is a budget, and a larger one is surely a typo.
    const MAX: f64 = 365.0 * 24.0 * 3600.0;
    if !(0.0..=MAX).contains(&secs) {
        return Err(format!("duration `{s}` is out of range (at most a year)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_in_range_or_a_clear_error() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        for bad in [
            "99999999999999999999999s",
            "1e400",
            "-1s",
            "NaNs",
            "infs",
            "5y",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
