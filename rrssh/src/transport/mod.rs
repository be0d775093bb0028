//! Carriers: the SSH carrier (russh) with servers that accept rrssh connections and clients
//! that dial them, plus rrssh over a spawned `ssh` ([`Client::over_command`]), services behind a
//! stock `sshd` ([`RemoteForward`]) and plain TCP ([`Client::tcp`], [`Server::bind_tcp`](crate::Server::bind_tcp)).
//!
//! Over SSH, rrssh runs on a session channel that requests the subsystem `rrssh`, opened by
//! whichever side dialed. Who serves and who calls does not depend on who dialed: both ends of
//! every connection may do both.

mod builder;
mod child;
mod client;
mod command;
mod connect_error;
mod dial;
mod login;
pub(crate) mod pipe;
mod reconnect;
mod remote_forward;
mod renew;
#[cfg(feature = "ssh-config")]
mod ssh_config;
mod ssh_handler;
mod tcp;
mod web;

use std::time::Duration;

pub use self::builder::ClientBuilder;
pub use self::client::Client;
pub use self::command::ssh_command;
pub use self::connect_error::ConnectError;
pub use self::dial::{Dial, Dialing, Renewed};
pub use self::login::PasswordPrompt;
pub use self::reconnect::{ConnectionEvent, ReconnectingClient};
pub use self::remote_forward::{PersistentRemoteForward, RemoteForward};
#[cfg(feature = "ssh-config")]
pub use self::ssh_config::{ConfigFile, ProxySetting, SshLogin, SshLoginError};
pub use crate::client::Backoff;

/// The SSH subsystem name rrssh uses.
pub const SUBSYSTEM: &str = "rrssh";

/// The default port of an rrssh server (as korv's, a Python framework of REST over reverse
/// SSH, so its clients find it).
pub const DEFAULT_PORT: u16 = 8022;

/// SSH algorithm preferences: russh's defaults with AES-256-GCM moved first (about twice as
/// fast as chacha20-poly1305 on CPUs with AES instructions); key exchange lists, including the
/// strict-kex (Terrapin) markers, are left as they are.
pub(crate) fn preferred() -> russh::Preferred {
    let mut p = russh::Preferred::default();
    let mut ciphers: Vec<russh::cipher::Name> = p.cipher.iter().copied().collect();
    if let Some(pos) = ciphers
        .iter()
        .position(|c| *c == russh::cipher::AES_256_GCM)
    {
        let c = ciphers.remove(pos);
        ciphers.insert(0, c);
    }
    p.cipher = ciphers.into();
    // Compression only after authentication (`zlib@openssh.com`, as OpenSSH's sshd offers it):
    // plain `zlib` would inflate what an unauthenticated peer sends.
    p.compression = vec![russh::compression::NONE, russh::compression::ZLIB_LEGACY].into();
    p
}

/// How often an idle SSH connection is probed, and after how many missed answers it is dead.
pub(crate) const KEEPALIVE: (Duration, usize) = (Duration::from_secs(5), 3);

/// The account running this process, as `ssh` finds it for a login name: `$USER`, else
/// `$LOGNAME`, else the passwd entry of the process's user (under cron, systemd and in
/// containers neither variable may be set).
pub fn local_user() -> Option<String> {
    let named = |v: &str| std::env::var(v).ok().filter(|n| !n.is_empty());
    named("USER").or_else(|| named("LOGNAME")).or_else(|| {
        let uid = rustix::process::getuid().as_raw();
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd_name(&passwd, uid)
    })
}

/// The name of user `uid` in a passwd file's text.
fn passwd_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_user_is_found_by_uid_in_passwd() {
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\n# comment\nbad\nada:x:1000:1000::/home/ada:/bin/sh\n";
        assert_eq!(super::passwd_name(passwd, 1000).as_deref(), Some("ada"));
        assert_eq!(super::passwd_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(super::passwd_name(passwd, 7), None);
    }
}
