//! Where a client dials over WebSocket: `ws://[USER@]HOST[:PORT][/PATH]` or `wss://…`.

/// A parsed `ws://` or `wss://` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WebTarget {
    /// `wss://`: TLS under the WebSocket.
    pub(crate) tls: bool,
    pub(crate) user: Option<String>,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The request path (the server's [`PATH`](super::PATH) when the URL has none).
    pub(crate) path: String,
}

impl WebTarget {
    /// `Ok(None)` for a target that is no WebSocket URL (`host:port`); `Err` says what is wrong
    /// with one that is.
    pub(crate) fn parse(target: &str) -> Result<Option<Self>, String> {
        let (tls, rest) = if let Some(r) = target.strip_prefix("wss://") {
            (true, r)
        } else if let Some(r) = target.strip_prefix("ws://") {
            (false, r)
        } else {
            return Ok(None);
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], &rest[i..]),
            Some(_) => return Err(format!("`{target}`: a query needs a path before it")),
            None => (rest, super::PATH),
        };
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) if !u.is_empty() => (Some(u.to_owned()), h),
            Some(_) => return Err(format!("`{target}`: empty user name before `@`")),
            None => (None, authority),
        };
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("`{target}`: `[` without `]`"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => parse_port(p, target)?,
                None if after.is_empty() => default_port,
                None => {
                    return Err(format!(
                        "`{target}`: unexpected `{after}` after the address"
                    ));
                }
            };
            (h.to_owned(), port)
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h.to_owned(), parse_port(p, target)?),
                None => (hostport.to_owned(), default_port),
            }
        };
        if host.is_empty() || host.starts_with('-') {
            return Err(format!(
                "`{target}`: a host name cannot be empty or start with `-`"
            ));
        }
        if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(format!(
                "`{target}`: the path holds spaces or control bytes"
            ));
        }
        Ok(Some(Self {
            tls,
            user,
            host,
            port,
            path: path.to_owned(),
        }))
    }

    /// The URL, without the user, as the WebSocket request names it.
    pub(crate) fn url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}{}", self.port, self.path)
    }
}

fn parse_port(p: &str, target: &str) -> Result<u16, String> {
    p.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("`{target}`: `{p}` is not a port"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_their_defaults() {
        let t = WebTarget::parse("wss://hub.example").unwrap().unwrap();
        assert_eq!(
            (t.tls, t.port, t.path.as_str()),
            (true, 443, super::super::PATH)
        );
        assert_eq!(t.user, None);
        let t = WebTarget::parse("ws://ada@10.0.0.1:8080/ssh?x=1")
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                t.tls,
                t.user.as_deref(),
                t.host.as_str(),
                t.port,
                t.path.as_str()
            ),
            (false, Some("ada"), "10.0.0.1", 8080, "/ssh?x=1")
        );
        let t = WebTarget::parse("wss://[::1]:9443").unwrap().unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9443));
        assert_eq!(t.url(), format!("wss://[::1]:9443{}", super::super::PATH));
        assert_eq!(WebTarget::parse("hub.example:8022").unwrap(), None);
    }

    #[test]
    fn bad_targets_say_what_is_wrong() {
        for (bad, says) in [
            ("wss://", "empty"),
            ("ws://-oProxyCommand=x", "start with `-`"),
            ("wss://h:0", "not a port"),
            ("wss://h:99999", "not a port"),
            ("wss://@h", "empty user"),
            ("wss://[::1", "without `]`"),
            ("wss://h/a b", "spaces"),
            ("wss://h?x", "query"),
        ] {
            let err = WebTarget::parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
