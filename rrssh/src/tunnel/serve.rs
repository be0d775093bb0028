//! The server's side of a tunnel: a `direct-tcpip` channel joined to a TCP connection.

use super::PermitOpen;
use crate::keys::AuthorizedKey;

/// What one key may open, from the server's list and the key's own options.
#[derive(Debug, Clone)]
pub(crate) struct KeyTunnels {
    allowed: bool,
    narrowed: Option<PermitOpen>,
    listen_narrowed: Option<PermitOpen>,
}

impl KeyTunnels {
    /// Reads `no-port-forwarding`, `restrict`, `port-forwarding`, `permitopen="…"` and
    /// `permitlisten="…"`.
    pub(crate) fn of(entry: &AuthorizedKey) -> Self {
        let has = |o: &str| entry.options.has(o);
        let allowed = !has("no-port-forwarding") && (!has("restrict") || has("port-forwarding"));
        // Repeated options add up, as in sshd. Malformed values are refused when the file is
        // loaded; here they would refuse everything.
        let list = |name: &str| {
            has(name).then(|| {
                let all: Vec<&str> = entry.options.all(name).collect();
                PermitOpen::parse(&all.join(",")).unwrap_or_default()
            })
        };
        let narrowed = list("permitopen");
        let listen_narrowed = list("permitlisten");
        Self {
            allowed,
            narrowed,
            listen_narrowed,
        }
    }

    /// Why listening on `host:port` (a remote tunnel) is refused, if it is.
    pub(crate) fn listen_refusal(
        &self,
        server: &PermitOpen,
        host: &str,
        port: u32,
    ) -> Option<&'static str> {
        self.check(server, self.listen_narrowed.as_ref(), host, port)
            .map(|why| match why {
                Refusal::Off => "port forwarding is turned off for this key",
                Refusal::Server => "the server does not permit listening there",
                Refusal::Key => "this key's permitlisten does not include this address",
            })
    }

    /// Why connecting to `host:port` (a local tunnel) is refused, if it is.
    pub(crate) fn refusal(
        &self,
        server: &PermitOpen,
        host: &str,
        port: u32,
    ) -> Option<&'static str> {
        self.check(server, self.narrowed.as_ref(), host, port)
            .map(|why| match why {
                Refusal::Off => "port forwarding is turned off for this key",
                Refusal::Server => "the server does not permit this target",
                Refusal::Key => "this key's permitopen does not include this target",
            })
    }

    fn check(
        &self,
        server: &PermitOpen,
        key: Option<&PermitOpen>,
        host: &str,
        port: u32,
    ) -> Option<Refusal> {
        if !self.allowed {
            Some(Refusal::Off)
        } else if !server.allows(host, port) {
            Some(Refusal::Server)
        } else if key.is_some_and(|n| !n.allows(host, port)) {
            Some(Refusal::Key)
        } else {
            None
        }
    }
}

/// Which rule refused a tunnel.
enum Refusal {
    Off,
    Server,
    Key,
}

/// The address a server binds for a `tcpip-forward` request: OpenSSH clients send
/// `localhost` (or nothing) for "the loopback interface".
pub(crate) fn listen_host(requested: &str) -> String {
    match requested {
        "" | "localhost" => "127.0.0.1".to_owned(),
        other => other
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase(),
    }
}

/// Accepts connections on a server's forwarded port and carries each to the client in a
/// `forwarded-tcpip` channel, named with the address the client asked for and the port.
pub(crate) async fn accept_forwarded(
    listener: tokio::net::TcpListener,
    session: russh::server::Handle,
    address: String,
    port: u32,
) {
    let accept = move |tcp, from: std::net::SocketAddr| {
        let (session, address) = (session.clone(), address.clone());
        async move {
            match session
                .channel_open_forwarded_tcpip(
                    address,
                    port,
                    from.ip().to_string(),
                    u32::from(from.port()),
                )
                .await
            {
                Ok(channel) => crate::transport::pipe::pipe(tcp, channel.into_stream()).await,
                Err(e) => {
                    tracing::info!(%from, error = %e, "the client refused a forwarded connection")
                }
            }
        }
    };
    crate::accept::accept_loop(listener, std::future::pending(), "forwarded port", accept).await;
}
