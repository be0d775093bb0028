//! Option groups shared by several commands: how to log in, how to reconnect, how to print.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// How to reach and log in to a server.
#[derive(Debug, Clone, Args)]
pub(crate) struct Login {
    /// The port to dial, as `ssh -p` (before the target's own and the ssh config's)
    /// [default: 8022 for the API commands, 22 for shell, webshell and forward].
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    pub(crate) port: Option<u16>,
    /// The user to log in as, as `ssh -l` (before the target's `user@` and the ssh config's
    /// `User`) [default: the local user].
    #[arg(short = 'l', long = "login-name", value_name = "USER")]
    pub(crate) user: Option<String>,
    /// Private key to log in with (repeatable) [default: the `IdentityFile`s of the host in
    /// the ssh config, else ~/.ssh/id_ed25519, id_ecdsa, id_rsa]. The ssh-agent at
    /// `SSH_AUTH_SOCK` is asked next, then a password.
    #[arg(short = 'i', long, value_name = "KEY")]
    pub(crate) identity: Vec<PathBuf>,
    /// known_hosts file to check host keys against [default: the host's `UserKnownHostsFile`,
    /// else ~/.ssh/known_hosts].
    #[arg(long, value_name = "FILE")]
    pub(crate) known_hosts: Option<PathBuf>,
    /// Record the host key of an unknown host (a changed key is still refused).
    #[arg(long)]
    pub(crate) accept_new: bool,
    /// OpenSSH client config for host aliases (`Host`, `HostName`, `Port`, `User`,
    /// `IdentityFile`, `ProxyJump`, `UserKnownHostsFile`); `none` reads none
    /// [default: ~/.ssh/config].
    #[arg(short = 'F', long = "ssh-config", value_name = "FILE")]
    pub(crate) ssh_config: Option<PathBuf>,
    /// Reach the server through this SSH host, as `ssh -J` does: [user@]host[:port]
    /// (port 22 unless given, as for `ssh`; an alias of the ssh config works too).
    #[arg(short = 'J', long = "jump", value_name = "HOST")]
    pub(crate) jump: Option<String>,
    /// Read the password (for `password` and `keyboard-interactive` logins) from this file's
    /// first line; `RRSSH_PASSWORD` works too. Without either, it is asked for on the terminal,
    /// and only if the keys were refused.
    #[arg(long, value_name = "FILE")]
    pub(crate) password_file: Option<PathBuf>,
    /// Dial through this proxy: http://[USER:PASS@]HOST[:PORT] (HTTP CONNECT),
    /// socks5://… or socks5h://… (SOCKS5; socks5h lets the proxy resolve names); `none` dials
    /// directly [default: ALL_PROXY, else HTTPS_PROXY, unless NO_PROXY names the host].
    #[arg(long, value_name = "URL")]
    pub(crate) proxy: Option<String>,
    /// Check a wss:// server's certificate against the authorities in this PEM file (a
    /// private CA) instead of the system's.
    #[arg(long, value_name = "FILE")]
    pub(crate) tls_ca: Option<PathBuf>,
}

/// How a long-running command reconnects (exponential backoff with full jitter between the
/// two).
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct Reconnect {
    /// The first wait's ceiling after losing the connection.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", default_value = "250ms")]
    pub(crate) reconnect_min: Duration,
    /// The longest wait between two attempts.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", default_value = "2s")]
    pub(crate) reconnect_max: Duration,
}

impl Reconnect {
    pub(crate) fn backoff(self) -> rrssh::client::Backoff {
        rrssh::client::Backoff::default()
            .initial(self.reconnect_min)
            .max(self.reconnect_max.max(self.reconnect_min))
    }
}

/// How to print answers.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct Output {
    /// Pretty, coloured JSON: auto (on a terminal), always, never.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub(crate) color: Color,
}

/// The time budget of a call.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct Budget {
    /// Time budget of the call (e.g. 500ms, 5s, 2m); it travels with the call.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub(crate) timeout: Option<Duration>,
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

/// `1048576`, `64K`, `256M`, `1G` (powers of 1,024).
pub(crate) fn parse_size(s: &str) -> Result<usize, String> {
    let (num, shift) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 10),
        Some((i, 'M' | 'm')) => (&s[..i], 20),
        Some((i, 'G' | 'g')) => (&s[..i], 30),
        _ => (s, 0),
    };
    let n: usize = num
        .parse()
        .map_err(|_| format!("not a size: `{s}` (bytes, or a number with K, M or G)"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// `500ms`, `5s`, `2m`, or plain seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
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
    use super::{parse_duration, parse_size};
    use std::time::Duration;

    #[test]
    fn sizes_with_units_or_a_clear_error() {
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("1000"), Ok(1000));
        for bad in ["", "M", "-1M", "1.5G", "99999999999999999999G", "5T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

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
