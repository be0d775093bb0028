//! Targets: `[user@]host[:port]` or `ssh://[user@]host[:port]` (a server, or an alias of the
//! ssh config) and `hub://[user@]host[:port]/PEER` (a peer reached through a hub's caller
//! access); over WebSocket, `ws://` and `wss://[user@]host[:port][/PATH]` (a server) and
//! `hub+ws://`, `hub+wss://[user@]host[:port]/PEER` (a peer of a hub, at the hub's WebSocket
//! path).
//!
//! Without a port (in the target, `-p` or the ssh config), the commands that call the API
//! (`call`, `stream`, `routes`, `peers`, `gateway`) dial rrssh's port, 8022; those that work
//! against any SSH server (`shell`, `webshell`, `forward`) dial SSH's, 22, as `ssh` does.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) user: Option<String>,
    /// The host name, address or ssh config alias.
    pub(crate) host: String,
    /// The port, if given.
    pub(crate) port: Option<u16>,
    /// The peer, for `hub://`.
    pub(crate) peer: Option<String>,
    /// The WebSocket URL dialed, for `ws://`, `wss://` and `hub+ws(s)://`.
    pub(crate) web: Option<String>,
}

impl Target {
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        if s.starts_with("ws://") || s.starts_with("wss://") {
            return Self::web(s, s, None);
        }
        for scheme in ["hub+ws://", "hub+wss://"] {
            if let Some(rest) = s.strip_prefix(scheme) {
                let (authority, peer) = rest
                    .split_once('/')
                    .filter(|(_, p)| !p.trim_end_matches('/').is_empty())
                    .ok_or_else(|| {
                        format!("target `{s}` names no peer: {scheme}host[:port]/PEER")
                    })?;
                let url = format!("{}{authority}", &scheme["hub+".len()..]);
                return Self::web(s, &url, Some(peer.trim_end_matches('/').to_owned()));
            }
        }
        let (hub, rest) = if let Some(r) = s.strip_prefix("ssh://") {
            (false, r)
        } else if let Some(r) = s.strip_prefix("hub://") {
            (true, r)
        } else if let Some((scheme, _)) = s.split_once("://") {
            return Err(format!(
                "target `{s}`: unknown scheme `{scheme}://`; give [user@]host[:port] or ssh://…                  (a server), ws:// or wss:// (over WebSocket), or hub://, hub+ws:// or                  hub+wss://…/PEER (a peer of a hub)"
            ));
        } else if s.contains('/') {
            return Err(format!(
                "target `{s}`: a path needs a hub: hub://host[:port]/PEER"
            ));
        } else {
            // `[user@]host[:port]`, as `ssh` takes a destination; an IPv6 address with a port
            // goes in brackets.
            (false, s)
        };
        let (authority, peer) = match rest.split_once('/') {
            Some((a, p)) => (a, Some(p.trim_end_matches('/'))),
            None => (rest, None),
        };
        let peer = peer.filter(|p| !p.is_empty()).map(str::to_owned);
        if hub && peer.is_none() {
            return Err(format!(
                "target `{s}` names no peer: hub://host[:port]/PEER"
            ));
        }
        if !hub && peer.is_some() {
            return Err(format!("target `{s}`: an ssh:// target has no path"));
        }
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_owned()), h),
            None => (None, authority),
        };
        if hostport.is_empty() {
            return Err(format!("target `{s}` has no host"));
        }
        let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
            let (h, p) = rest
                .split_once(']')
                .ok_or_else(|| format!("target `{s}`: unclosed `[`"))?;
            let port = match p.strip_prefix(':') {
                Some(p) => Some(
                    p.parse::<u16>()
                        .map_err(|_| format!("target `{s}`: bad port"))?,
                ),
                None if p.is_empty() => None,
                None => return Err(format!("target `{s}`: bad port")),
            };
            (h.to_owned(), port)
        } else {
            match hostport.rsplit_once(':') {
                // A bare IPv6 address: no port.
                Some((h, _)) if h.contains(':') => (hostport.to_owned(), None),
                Some((h, p)) => (
                    h.to_owned(),
                    Some(
                        p.parse::<u16>()
                            .map_err(|_| format!("target `{s}`: bad port"))?,
                    ),
                ),
                None => (hostport.to_owned(), None),
            }
        };
        if host.is_empty() || host.starts_with('-') {
            return Err(format!(
                "target `{s}`: a host cannot be empty or start with `-`"
            ));
        }
        Ok(Self {
            user,
            host,
            port,
            peer,
            web: None,
        })
    }

    /// A target dialed over WebSocket at `url`; the URL is checked as the library reads it.
    fn web(shown: &str, url: &str, peer: Option<String>) -> Result<Self, String> {
        // The host and port as `ssh://` would show them, for messages.
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or_default();
        let probe = Self::parse(&format!("ssh://{authority}"))
            .map_err(|e| e.replace(&format!("ssh://{authority}"), shown))?;
        Ok(Self {
            web: Some(url.to_owned()),
            peer,
            ..probe
        })
    }

    /// The path on the connected server for `path` on the target.
    pub(crate) fn path(&self, path: &str) -> String {
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        match &self.peer {
            Some(p) => format!("{}/{p}{path}", rrssh::hub::relay::PEERS_PATH),
            None => path,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        if let Some(url) = &self.web {
            return match &self.peer {
                Some(p) => write!(f, "hub+{url}/{p}"),
                None => f.write_str(url),
            };
        }
        match &self.peer {
            Some(p) => write!(f, "hub://{}{port}/{p}", self.host),
            None => write!(f, "ssh://{}{port}", self.host),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn targets() {
        let t = Target::parse("ssh://ada@127.0.0.1:9000").unwrap();
        assert_eq!(
            (t.user.as_deref(), t.host.as_str(), t.port, t.peer),
            (Some("ada"), "127.0.0.1", Some(9000), None)
        );
        let t = Target::parse("hub://hub.example/billing").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.peer.as_deref()),
            ("hub.example", None, Some("billing"))
        );
        assert_eq!(
            t.path("/users/7"),
            "/.well-known/rrssh/peers/billing/users/7"
        );
        let t = Target::parse("ssh://[::1]:22").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", Some(22)));
        assert!(Target::parse("ssh://-oProxyCommand=x").is_err());
        assert!(Target::parse("ssh://host:99999").is_err());
        assert!(
            Target::parse("http://x")
                .unwrap_err()
                .contains("unknown scheme")
        );
        // As `ssh` takes a destination.
        let t = Target::parse("root@127.0.0.1").unwrap();
        assert_eq!(
            (t.user.as_deref(), t.host.as_str(), t.port),
            (Some("root"), "127.0.0.1", None)
        );
        let t = Target::parse("api-alias:2222").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("api-alias", Some(2222)));
        let t = Target::parse("::1").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", None));
        let t = Target::parse("[::1]:2200").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", Some(2200)));
        assert!(Target::parse("-oProxyCommand=x").is_err());
        assert!(
            Target::parse("host/billing")
                .unwrap_err()
                .contains("hub://")
        );
        assert!(Target::parse("host:ssh").unwrap_err().contains("bad port"));
        assert!(Target::parse("").is_err());
        assert!(Target::parse("hub://x:1").unwrap_err().contains("no peer"));
    }

    #[test]
    fn websocket_targets() {
        let t = Target::parse("wss://ada@hub.example:8443/ssh").unwrap();
        assert_eq!(t.web.as_deref(), Some("wss://ada@hub.example:8443/ssh"));
        assert_eq!(
            (t.user.as_deref(), t.host.as_str(), t.port),
            (Some("ada"), "hub.example", Some(8443))
        );
        let t = Target::parse("hub+wss://hub.example/billing").unwrap();
        assert_eq!(t.web.as_deref(), Some("wss://hub.example"));
        assert_eq!(t.peer.as_deref(), Some("billing"));
        assert_eq!(t.to_string(), "hub+wss://hub.example/billing");
        assert!(
            Target::parse("hub+ws://hub.example")
                .unwrap_err()
                .contains("no peer")
        );
        assert!(Target::parse("wss://-oProxyCommand=x").is_err());
    }
}
