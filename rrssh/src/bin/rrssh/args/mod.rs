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
#[command(name = "rrssh", version, args_override_self = true)]
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
    /// Calls a route: rrssh call ssh://host:8022 GET /users/7 full=true
    Call {
        /// ssh://[user@]host[:port] or hub://[user@]host[:port]/PEER
        target: String,
        /// GET, POST, PUT, PATCH, DELETE, STREAM; STORE and UPDATE are taken as POST and PATCH.
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
        #[command(flatten)]
        login: Login,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        budget: Budget,
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
        #[command(flatten)]
        login: Login,
        #[command(flatten)]
        budget: Budget,
    },
    /// Lists a server's routes (method, path, summary, arguments, output).
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
    /// A persistent TCP tunnel, like `ssh -N -L` or `ssh -N -R`, reconnecting as needed, until
    /// Ctrl-C. Works against any SSH server.
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
        #[command(flatten)]
        login: Login,
        #[command(flatten)]
        reconnect: Reconnect,
    },
    /// Opens a terminal on a server, like `ssh -t`: a shell, or COMMAND; exits with its
    /// status. Works against any SSH server.
    Shell {
        /// ssh://[user@]host[:port] of the server
        target: String,
        /// A command to run instead of a shell.
        command: Option<String>,
        /// Hang up after this long with nothing typed or printed.
        #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
        idle_timeout: Option<Duration>,
        #[command(flatten)]
        login: Login,
    },
    /// Serves a terminal on a server in the browser (xterm.js), until Ctrl-C; prints the
    /// address to open, which carries a random access token. Works against any SSH server.
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
    /// Lists the peers connected to a hub (those this key may call); with --watch, prints
    /// who connects and leaves, as it happens, until Ctrl-C.
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
