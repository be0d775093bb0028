//! Targets: `ssh://[user@]host[:port]` (a server) and `hub://[user@]host[:port]/PEER` (a peer
//! reached through a hub's caller access).

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
}

impl Target {
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let (hub, rest) = if let Some(r) = s.strip_prefix("ssh://") {
            (false, r)
        } else if let Some(r) = s.strip_prefix("hub://") {
            (true, r)
        } else {
            return Err(format!(
                "target `{s}` must start with ssh:// (a server) or hub:// (a peer of a hub)"
            ));
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
        assert!(Target::parse("http://x").is_err());
        assert!(Target::parse("hub://x:1").unwrap_err().contains("no peer"));
    }
}
