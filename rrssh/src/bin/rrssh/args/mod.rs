//! The command line: the commands, each with only the options it takes.

mod config;
mod options;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::logging::LogFormat;

pub(crate) use self::config::{effective, expand};
pub(crate) use self::options::{Budget, Color, Login, Output, Reconnect, parse_duration};

/// Calls rrssh services over SSH: REST-style JSON APIs with SSH keys; terminals, tunnels and
/// an HTTP gateway on any SSH server.
#[derive(Debug, Parser)]
#[command(
    name = "rrssh",
    version,
    args_override_self = true,
    after_help = "Targets: [user@]host[:port], ssh://…, an alias of ~/.ssh/config, hub://host/PEER\n\
        (a peer through a hub), ws:// and wss://… (over WebSocket). Without a port, the API\n\
        commands dial 8022, and shell, webshell and forward dial 22.\n\n\
        Examples:\n  \
        rrssh call api.example GET /users/7\n  \
        rrssh call api.example POST /items name=pears qty:=2\n  \
        rrssh stream api.example /ticks -n 3\n  \
        rrssh shell ops@db1 uptime\n  \
        rrssh forward -D 1080 ops@bastion\n  \
        rrssh completions bash > ~/.local/share/bash-completion/completions/rrssh"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// Log more (the library's debug lines); repeat for more.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Log errors only.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// How log lines are written: text, or json (one object a line). A running server,
    /// gateway or tunnel logs to stdout, other commands to stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
}

impl Command {
    /// Whether the command runs until stopped, logging what it does as its output.
    pub(crate) fn runs_until_stopped(&self) -> bool {
        matches!(
            self,
            Self::Serve { .. }
                | Self::Hub { .. }
                | Self::Gateway { .. }
                | Self::Forward { .. }
                | Self::Webshell { .. }
        )
    }
}

/// What a server serves besides its routes (`rrssh serve`, `rrssh hub`).
#[derive(Debug, clap::Args)]
pub(crate) struct Serving {
    /// Read settings from this TOML file first, one key per flag (`host-key = "…"`,
    /// `relay = true`, `permit-open = "…"`); flags given here override it.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Check the settings and the files they name (keys, certificates, tokens), print the
    /// settings in effect as a --config file, and exit: 0 if all is well, 1 if not.
    #[arg(long)]
    pub(crate) check_config: bool,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8022")]
    pub(crate) listen: String,
    /// The host key (an OpenSSH private key, mode 600; see --create-host-key).
    #[arg(long, value_name = "FILE")]
    pub(crate) host_key: PathBuf,
    /// Make a new ed25519 host key at --host-key if there is none (without it, a missing
    /// host key is an error: a mistyped path must not give clients a changed host key).
    #[arg(long)]
    pub(crate) create_host_key: bool,
    /// Who may connect (sshd's format); keys without `rrssh-users="NAME,…"` log in as the
    /// user running the server.
    #[arg(long, value_name = "FILE")]
    pub(crate) authorized_keys: PathBuf,
    /// CAs (public keys, one per line) whose OpenSSH user certificates log in as any of their
    /// principals, like sshd's TrustedUserCAKeys.
    #[arg(long, value_name = "FILE")]
    pub(crate) trusted_user_ca: Option<PathBuf>,
    /// A certificate of the host key (`ssh-keygen -s CA -h`), shown to clients that trust its
    /// CA (`@cert-authority` in known_hosts), like sshd's HostCertificate.
    #[arg(long, value_name = "FILE")]
    pub(crate) host_certificate: Option<PathBuf>,
    /// Renew the certificates this CA key signed (POST /.well-known/rrssh/certificate), for
    /// callers logged in with one granted `certificate:renew`.
    #[arg(long, value_name = "CA_KEY")]
    pub(crate) renew_certificates: Option<PathBuf>,
    /// How long a renewed certificate is valid.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", default_value = "1h", requires = "renew_certificates")]
    pub(crate) renewal_ttl: Duration,
    /// Keys and certificates that may not log in (a KRL from `ssh-keygen -k`, or public keys one
    /// per line), like sshd's RevokedKeys; read again when the file changes.
    #[arg(long, value_name = "FILE")]
    pub(crate) revoked_keys: Option<PathBuf>,
    /// Also serve the HTTP gateway on this address (`GET /peers`, `METHOD /peers/NAME/PATH`).
    #[arg(long, value_name = "ADDR", requires = "gateway_tokens")]
    pub(crate) gateway: Option<String>,
    /// The gateway's bearer tokens: lines of `NAME TOKEN [call:PEER,…]` (the gateway is also
    /// served on the --https and --ws ports with them).
    #[arg(long, value_name = "FILE")]
    pub(crate) gateway_tokens: Option<PathBuf>,
    /// Also serve on this address, under TLS: SSH over WebSocket (wss://), raw SSH, and the
    /// gateway (https://) if --gateway-tokens is given. The certificate comes from --tls-cert
    /// and --tls-key (SIGHUP reloads them), or from an ACME authority (--acme).
    #[arg(long, value_name = "ADDR")]
    pub(crate) https: Option<String>,
    /// The --https certificate chain (PEM, leaf first).
    #[arg(long, value_name = "FILE", requires_all = ["https", "tls_key"])]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The --https private key (PEM).
    #[arg(long, value_name = "FILE", requires_all = ["https", "tls_cert"])]
    pub(crate) tls_key: Option<PathBuf>,
    /// Get the --https certificate for these names (NAME,…) from an ACME authority (Let's
    /// Encrypt unless --acme-directory), which checks them on the --https port itself
    /// (TLS-ALPN-01: it must be reachable as NAME:443); renewed before it expires.
    #[arg(long, value_name = "NAMES", requires_all = ["https", "acme_cache"], conflicts_with = "tls_cert")]
    pub(crate) acme: Option<String>,
    /// Where the ACME account, certificate and key are kept between runs.
    #[arg(long, value_name = "DIR", requires = "acme")]
    pub(crate) acme_cache: Option<PathBuf>,
    /// The ACME directory URL (default: Let's Encrypt's).
    #[arg(long, value_name = "URL", requires = "acme")]
    pub(crate) acme_directory: Option<String>,
    /// A contact address for the ACME account.
    #[arg(long, value_name = "EMAIL", requires = "acme")]
    pub(crate) acme_email: Option<String>,
    /// Trust this CA (PEM) for the ACME authority's own HTTPS (a private or test authority).
    #[arg(long, value_name = "FILE", requires = "acme")]
    pub(crate) acme_ca: Option<PathBuf>,
    /// Also serve on this address, without TLS (behind a reverse proxy that ends it): SSH
    /// over WebSocket (ws://), raw SSH, and the gateway if --gateway-tokens is given.
    #[arg(long, value_name = "ADDR")]
    pub(crate) ws: Option<String>,
    /// Let keys without `rrssh-services="…"` register service names (never names another
    /// key's `rrssh-services` lists).
    #[arg(long)]
    pub(crate) open_registration: bool,
    /// The most one key may make the server hold over all its connections (request bodies
    /// received and being read or held), e.g. 256M; past it, calls are refused with 429.
    #[arg(long, value_name = "BYTES", value_parser = options::parse_size, default_value = "256M")]
    pub(crate) per_key_memory: usize,
    /// The most all peers together may make the server hold, e.g. 1G; past it, 503.
    #[arg(long, value_name = "BYTES", value_parser = options::parse_size, default_value = "1G")]
    pub(crate) process_memory: usize,
    /// The most calls one key may have in flight over all its connections; past it, 429.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub(crate) max_calls_per_key: usize,
    /// Serve Prometheus metrics (/metrics), /healthz and /readyz over HTTP on this address
    /// (keep it on loopback or a private network: it takes no token).
    #[arg(long, value_name = "ADDR")]
    pub(crate) admin: Option<String>,
    /// Append a JSON line per login, call, tunnel and connection to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) audit: Option<PathBuf>,
    /// On SIGTERM or SIGINT, how long calls in flight may take to finish (a second signal
    /// ends them at once).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", default_value = "10s")]
    pub(crate) grace: Duration,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Makes an ed25519 key pair in OpenSSH's format and prints its fingerprint.
    #[command(after_help = "Examples:\n  \
        rrssh keygen -f ~/.ssh/id_ed25519 -C ops@laptop\n  \
        RRSSH_PASSPHRASE=… rrssh keygen -f deploy_key -N \"$RRSSH_PASSPHRASE\"")]
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
        /// Encrypt the private key with this passphrase (as `ssh-keygen -N`; visible to
        /// other users in the process list: prefer `RRSSH_PASSPHRASE`). Empty: unencrypted.
        #[arg(short = 'N', long, value_name = "PASSPHRASE")]
        passphrase: Option<String>,
    },
    /// A certificate authority for a fleet: `rrssh ca init`, then `rrssh ca sign` (OpenSSH
    /// certificates, as `ssh-keygen -s` makes them).
    Ca {
        #[command(subcommand)]
        action: CaAction,
    },
    /// Calls a route, as httpie would: rrssh call HOST GET /users/7 full==true
    #[command(after_help = "Request items, as httpie takes them:\n  \
        key=value     a JSON string field of the body   name=pears\n  \
        key:=json     a JSON field, as written          qty:=2  tags:='[\"a\"]'\n  \
        key==value    a query parameter                 page==2\n  \
        Name:value    a header                          X-Trace:abc\n\n\
        Answers: JSON pretty on a terminal, as received when piped; NDJSON streams item by item,\n\
        other bytes as they arrive. A server's error is one line on stderr; the exit code is\n\
        0 for 2xx, 3 for 3xx, 4 for 4xx, 5 for 5xx, 1 when no answer came.\n\n\
        Examples:\n  \
        rrssh call api.example GET /users/7                  # port 8022, as the API's\n  \
        rrssh call ada@10.0.0.7 -p 2222 GET /search q==rust page==2\n  \
        rrssh call api.example POST /items name=pears qty:=2\n  \
        rrssh call api.example PUT /items/1 -d @item.json -H 'If-Match: \"v3\"'\n  \
        rrssh call hub://hub.example/billing GET /invoices   # a peer, through a hub")]
    Call {
        /// [user@]host[:port], ssh://…, an alias of the ssh config, or
        /// hub://[user@]host[:port]/PEER
        target: String,
        /// GET, POST, PUT, PATCH, DELETE or STREAM; STORE and UPDATE (other clients' names)
        /// are taken as POST and PATCH.
        method: String,
        /// The path, e.g. /users/7.
        path: String,
        /// Request items: key=value, key:=json, key==value, Name:value (see below).
        items: Vec<String>,
        /// A header, `Name: value` (repeatable).
        #[arg(short = 'H', long = "header", value_name = "HEADER")]
        headers: Vec<String>,
        /// JSON body, checked before it is sent: inline, @file, or - for stdin.
        #[arg(long, value_name = "BODY", conflicts_with = "data")]
        json: Option<String>,
        /// Raw body, sent as it is: inline, @file, or - for stdin (its type: -H
        /// Content-Type's, else JSON if it is JSON, else application/octet-stream).
        #[arg(short = 'd', long = "data", value_name = "BODY")]
        data: Option<String>,
        /// Print the body as received, unformatted, an error's too (on stdout).
        #[arg(long)]
        raw: bool,
        /// Also print the status and headers.
        #[arg(short = 'I', long = "include")]
        include: bool,
        #[command(flatten)]
        login: Login,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        budget: Budget,
    },
    /// Streams a route's items as NDJSON as they arrive; Ctrl-C cancels the call.
    #[command(after_help = "Examples:\n  \
        rrssh stream api.example /ticks                 # until the stream ends or Ctrl-C\n  \
        rrssh stream api.example /logs level==warn -n 10")]
    Stream {
        /// [user@]host[:port], ssh://…, an alias of the ssh config, or
        /// hub://[user@]host[:port]/PEER
        target: String,
        /// The path, e.g. /ticks.
        path: String,
        /// Query parameters and headers: key==value, Name:value.
        items: Vec<String>,
        /// A header, `Name: value` (repeatable).
        #[arg(short = 'H', long = "header", value_name = "HEADER")]
        headers: Vec<String>,
        /// Stop (and cancel the call) after this many items.
        #[arg(long, short = 'n')]
        limit: Option<u64>,
        #[command(flatten)]
        login: Login,
        #[command(flatten)]
        budget: Budget,
    },
    /// Lists a server's routes (method, path, summary, arguments, output).
    #[command(after_help = "Examples:\n  \
        rrssh routes api.example\n  \
        rrssh routes hub://hub.example/billing --openapi > billing.json")]
    Routes {
        /// ssh://[user@]host[:port] or hub://[user@]host[:port]/PEER
        target: String,
        /// Print its OpenAPI 3.1 document instead (for code generators in other languages).
        #[arg(long)]
        openapi: bool,
        #[command(flatten)]
        login: Login,
        #[command(flatten)]
        output: Output,
    },
    /// Runs an rrssh server from the command line, like a small sshd: terminals, tunnels,
    /// caller access to reverse services (relay) and an HTTP gateway, each only if asked.
    #[command(after_help = "Examples:\n  \
        rrssh serve --host-key host_key --create-host-key --authorized-keys authorized_keys\n  \
        rrssh serve --config /etc/rrssh/serve.toml --check-config\n  \
        rrssh serve ... --terminal --permit-open 127.0.0.1:5432 --admin 127.0.0.1:9100")]
    Serve {
        #[command(flatten)]
        serving: Serving,
        /// Serve terminal sessions (`rrssh shell`, `ssh -t`) with this shell, to the keys granted
        /// one: `pty` or rrssh-scopes="terminal" on their authorized_keys line.
        #[arg(long, value_name = "SHELL", num_args = 0..=1, default_missing_value = "/bin/sh")]
        terminal: Option<String>,
        /// Serve terminals to every key its authorized_keys line does not forbid one
        /// (`no-pty`, `restrict`), as sshd does, API-only and service keys included.
        #[arg(long, requires = "terminal")]
        terminal_for_all_keys: bool,
        /// Record every terminal session in this directory, as asciicast v2 files (what the
        /// program prints, not what is typed; at most 64 MiB each; `asciinema play` replays them).
        #[arg(long, value_name = "DIR", requires = "terminal")]
        record_terminals: Option<PathBuf>,
        /// Hang up terminal sessions idle this long.
        #[arg(long, value_parser = parse_duration, value_name = "DURATION", requires = "terminal")]
        terminal_idle: Option<Duration>,
        /// Targets callers may open tunnels to (`-L`): HOST:PORT,… (`*` for any host or port).
        #[arg(long, value_name = "LIST")]
        permit_open: Option<String>,
        /// Addresses callers may ask the server to listen on (`-R`): HOST:PORT,…
        #[arg(long, value_name = "LIST")]
        permit_listen: Option<String>,
        /// Let callers reach the services connected to this server by name (a hub).
        #[arg(long)]
        relay: bool,
        /// Serve a terminal on this server in the browser on the --https port, at
        /// `/terminal/` behind an access token printed at start (the --terminal shell, as the
        /// account running the server).
        #[arg(long, requires_all = ["terminal", "https"])]
        web_terminal: bool,
    },
    /// Runs a hub: services connect to it, callers reach them through it (`serve --relay`).
    #[command(after_help = "Examples:\n  \
        rrssh hub --listen 0.0.0.0:8022 --host-key hub_key --authorized-keys authorized_keys\n  \
        rrssh hub ... --cluster nats://127.0.0.1:4222 --cluster-hub-keys hub_keys")]
    Hub {
        #[command(flatten)]
        serving: Serving,
        /// Join a cluster of hubs on this NATS server (with JetStream, 2.10 or newer);
        /// `nats://user:password@HOST:PORT` or `nats://token@HOST:PORT` authenticate, `tls://`
        /// requires TLS.
        #[arg(long, value_name = "nats://HOST:PORT")]
        cluster: Option<String>,
        /// This hub's id in the cluster (default random).
        #[arg(long, value_name = "ID", requires = "cluster")]
        hub_id: Option<String>,
        /// Authenticate to NATS with this `.creds` file (a user JWT and its NKey seed).
        #[arg(long, value_name = "FILE", requires = "cluster")]
        cluster_creds: Option<std::path::PathBuf>,
        /// Authenticate to NATS with the NKey seed (`SU…`) in this file.
        #[arg(long, value_name = "FILE", requires = "cluster")]
        cluster_nkey: Option<std::path::PathBuf>,
        /// Trust this CA (PEM) for the NATS server's certificate; requires TLS.
        #[arg(long, value_name = "FILE", requires = "cluster")]
        cluster_ca: Option<std::path::PathBuf>,
        /// Present this client certificate (PEM) to NATS, with `--cluster-key`; requires TLS.
        #[arg(long, value_name = "FILE", requires_all = ["cluster", "cluster_key"])]
        cluster_cert: Option<std::path::PathBuf>,
        /// The client certificate's private key (PEM).
        #[arg(long, value_name = "FILE", requires = "cluster_cert")]
        cluster_key: Option<std::path::PathBuf>,
        /// The hubs of the cluster: one `ssh-ed25519 AAAA… HUB-ID` (or `HUB-ID` and a `.pub`
        /// line) a line. What hubs send each other is signed with their host keys; only these
        /// keys are accepted, each as its hub.
        #[arg(long, value_name = "FILE", requires = "cluster")]
        cluster_hub_keys: Option<std::path::PathBuf>,
        /// Accept unsigned messages from anyone on the NATS server (one only hubs can reach).
        #[arg(long, requires = "cluster")]
        cluster_insecure_unsigned: bool,
    },
    /// A local HTTP gateway to one server or peer, until Ctrl-C: `METHOD /PATH` on it is the
    /// call `METHOD /PATH` there, with the hub gateway's tokens, NDJSON streams and error JSON.
    #[command(after_help = "Examples:\n  \
        rrssh gateway api.example --tokens tokens      # curl -H 'Authorization: Bearer …' 127.0.0.1:8080/users/7\n  \
        rrssh gateway hub://hub.example/billing --anonymous --listen 127.0.0.1:9000")]
    Gateway {
        /// ssh://[user@]host[:port] or hub://[user@]host[:port]/PEER
        target: String,
        /// Address to serve HTTP on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Read settings from this TOML file first, one key per flag (`tokens = "…"`); flags
        /// given here override it.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Check the settings and the token file, print the settings in effect, and exit.
        #[arg(long)]
        check_config: bool,
        /// Bearer tokens callers present: lines of `NAME TOKEN`.
        #[arg(long, value_name = "FILE", required_unless_present = "anonymous")]
        tokens: Option<PathBuf>,
        /// Admit callers without a token (only on an address only trusted callers reach).
        /// Web pages are kept out: such calls must be sent to a loopback name or an
        /// `--allow-host` name, and come from no other site's page (`Origin`).
        #[arg(long, conflicts_with = "tokens")]
        anonymous: bool,
        /// A host name (without port) anonymous callers may reach the gateway by, besides
        /// the loopback names; repeatable.
        #[arg(long, value_name = "NAME", requires = "anonymous")]
        allow_host: Vec<String>,
        #[command(flatten)]
        login: Login,
        #[command(flatten)]
        reconnect: Reconnect,
    },
    /// Persistent TCP tunnels, like `ssh -N -L`, `-R` and `-D`, reconnecting as needed, until
    /// Ctrl-C. Works against any SSH server.
    #[command(after_help = "Examples:\n  \
        rrssh forward -L 5433:127.0.0.1:5432 ops@db1           # ssh -N -L, to port 22\n  \
        rrssh forward -L 8080:web:80 -L 8443:web:443 bastion   # several at once\n  \
        rrssh forward -R 9000:127.0.0.1:3000 hub.example -p 8022\n  \
        rrssh forward -D 1080 ops@bastion                      # a SOCKS5 proxy: curl --socks5-hostname 127.0.0.1:1080 …")]
    Forward {
        /// -L [BIND:]PORT:HOST:HOSTPORT: listen here, connect to HOST:HOSTPORT from the server
        /// (repeatable)
        #[arg(
            short = 'L',
            value_name = "SPEC",
            required_unless_present_any = ["remote", "dynamic"]
        )]
        local: Vec<String>,
        /// -R [BIND:]PORT:HOST:HOSTPORT: the server listens, connect to HOST:HOSTPORT from here
        /// (repeatable)
        #[arg(short = 'R', value_name = "SPEC")]
        remote: Vec<String>,
        /// -D [BIND:]PORT: a SOCKS5 proxy here (no authentication; BIND defaults to
        /// 127.0.0.1), each connection going where it asks, from the server (repeatable)
        #[arg(short = 'D', value_name = "[BIND:]PORT")]
        dynamic: Vec<String>,
        /// No remote command, as `ssh -N` (what this command always does; accepted for
        /// `ssh` habits).
        #[arg(short = 'N')]
        no_command: bool,
        /// [user@]host[:port], ssh://… or an alias of the ssh config
        target: String,
        #[command(flatten)]
        login: Login,
        #[command(flatten)]
        reconnect: Reconnect,
    },
    /// Opens a terminal on a server, as `ssh` does: a shell, or COMMAND; exits with its
    /// status. Works against any SSH server.
    ///
    /// In a pseudo-terminal when the input is a terminal, else on pipes (`echo ls | rrssh
    /// shell HOST` reads the input to its end, then exits), as `ssh` decides; -t and -T choose.
    #[command(after_help = "Examples:\n  \
        rrssh shell ops@db1                      # a shell on port 22, as ssh ops@db1\n  \
        rrssh shell ops@db1 -p 2222 ls -la /srv  # a command, with its own flags\n  \
        echo uptime | rrssh shell db1            # no terminal: the input as it is\n  \
        rrssh shell ssh://127.0.0.1:8022 -i id_ed25519")]
    Shell {
        /// [user@]host[:port], ssh://… or an alias of the ssh config
        target: String,
        /// A command to run instead of a shell: the words after the target, options included,
        /// joined by spaces as `ssh` joins them.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "COMMAND"
        )]
        command: Vec<String>,
        /// Always ask for a pseudo-terminal (`ssh -t`), even when the input is not one.
        #[arg(short = 't', conflicts_with = "no_tty")]
        tty: bool,
        /// Never ask for a pseudo-terminal (`ssh -T`): the program runs on pipes.
        #[arg(short = 'T')]
        no_tty: bool,
        /// Hang up after this long with nothing typed or printed.
        #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
        idle_timeout: Option<Duration>,
        #[command(flatten)]
        login: Login,
    },
    /// Serves a terminal on a server in the browser (xterm.js), until Ctrl-C; prints the
    /// address to open, which carries a random access token. Works against any SSH server.
    #[command(after_help = "Examples:\n  \
        rrssh webshell ops@db1                 # open the address it prints\n  \
        rrssh webshell ssh://127.0.0.1:8022 htop --listen 127.0.0.1:7700")]
    Webshell {
        /// ssh://[user@]host[:port] of the server
        target: String,
        /// A command to run instead of a shell.
        command: Option<String>,
        /// Address to serve the page on (keep it on loopback, or behind a TLS proxy).
        #[arg(long, default_value = "127.0.0.1:7681")]
        listen: String,
        #[command(flatten)]
        login: Login,
        #[command(flatten)]
        reconnect: Reconnect,
    },
    /// Prints a completion script: `rrssh completions bash > /etc/bash_completion.d/rrssh`,
    /// `rrssh completions zsh > "${fpath[1]}/_rrssh"`, `rrssh completions fish >
    /// ~/.config/fish/completions/rrssh.fish`.
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// Prints the man page (roff): `rrssh man | man -l -`, or `rrssh man call` for one
    /// command's.
    Man {
        /// A command, for its own page.
        command: Option<String>,
    },
    /// Lists the peers connected to a hub (those this key may call); with --watch, prints
    /// who connects and leaves, as it happens, until Ctrl-C.
    #[command(after_help = "Examples:\n  \
        rrssh peers hub.example\n  \
        rrssh peers hub.example --watch --color never   # one JSON event a line")]
    Peers {
        /// ssh://[user@]host[:port] of the hub
        target: String,
        /// Follow connections and disconnections (reconnecting as needed).
        #[arg(long, short = 'w')]
        watch: bool,
        #[command(flatten)]
        login: Login,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        reconnect: Reconnect,
    },
}

/// What `rrssh ca` does.
#[derive(Debug, Subcommand)]
pub(crate) enum CaAction {
    /// Makes a CA key pair (ed25519). Its `.pub` goes into servers' --trusted-user-ca (user
    /// certificates) and clients' known_hosts as `@cert-authority HOSTS KEY` (host ones).
    Init {
        /// Where to write the CA's private key (the public one gets `.pub`).
        #[arg(short = 'f', long = "file", default_value = "rrssh_ca")]
        file: PathBuf,
        /// Overwrite an existing key.
        #[arg(long)]
        force: bool,
    },
    /// Signs a public key (KEY.pub) into KEY-cert.pub, which `ssh-keygen -L` reads and `ssh -i
    /// KEY` and `rrssh -i KEY` use.
    Sign {
        /// The CA's private key.
        #[arg(long, value_name = "FILE", default_value = "rrssh_ca")]
        ca: PathBuf,
        /// The principals: user names, or host names with --host.
        #[arg(
            short = 'n',
            long = "principal",
            value_name = "NAME,…",
            value_delimiter = ',',
            required = true
        )]
        principals: Vec<String>,
        /// How long it is valid, from now (it starts five minutes back, for clocks behind).
        #[arg(long, value_parser = parse_duration, value_name = "DURATION", default_value = "1h")]
        ttl: Duration,
        /// A host certificate instead of a user one.
        #[arg(long)]
        host: bool,
        /// The key id servers log (default: the key's file name).
        #[arg(short = 'I', long = "id", value_name = "ID")]
        id: Option<String>,
        /// The serial number (what a KRL can revoke it by).
        #[arg(short = 'z', long, value_name = "N", default_value_t = 0)]
        serial: u64,
        /// A command forced on every login with it.
        #[arg(long, value_name = "COMMAND")]
        force_command: Option<String>,
        /// The addresses it may log in from (addresses and CIDR blocks, comma-separated).
        #[arg(long, value_name = "LIST")]
        source_address: Option<String>,
        /// No terminal with it (no permit-pty).
        #[arg(long)]
        no_pty: bool,
        /// No tunnels with it (no permit-port-forwarding).
        #[arg(long)]
        no_port_forwarding: bool,
        /// rrssh's grants in it, within what the CA's authorized_keys line allows:
        /// `services=billing,reports`, `scopes=call:*`, `groups=ops` (repeat for more).
        #[arg(long = "grant", value_name = "KIND=NAMES")]
        grants: Vec<String>,
        /// The public key to sign.
        key: PathBuf,
    },
}
