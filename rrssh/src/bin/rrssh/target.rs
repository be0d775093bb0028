//! Targets: `ssh://[user@]host[:port]` (a server) and `hub://[user@]host[:port]/PEER` (a peer
//! reached through a hub's caller access).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) user: Option<String>,
    /// `host:port`.
    pub(crate) addr: String,
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
        let addr = if hostport
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            || hostport.ends_with(']')
        {
            hostport.to_owned()
        } else {
            format!("{hostport}:{}", rrssh::transport::DEFAULT_PORT)
        };
        Ok(Self { user, addr, peer })
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
        match &self.peer {
            Some(p) => write!(f, "hub://{}/{p}", self.addr),
            None => write!(f, "ssh://{}", self.addr),
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
            (t.user.as_deref(), t.addr.as_str(), t.peer),
            (Some("ada"), "127.0.0.1:9000", None)
        );
        let t = Target::parse("hub://hub.example/billing").unwrap();
        assert_eq!(
            (t.addr.as_str(), t.peer.as_deref()),
            ("hub.example:8022", Some("billing"))
        );
        assert_eq!(
            t.path("/users/7"),
            "/.well-known/rrssh/peers/billing/users/7"
        );
        assert!(Target::parse("http://x").is_err());
        assert!(Target::parse("hub://x:1").unwrap_err().contains("no peer"));
    }
}
