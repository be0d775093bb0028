//! Which `host:port` targets a server opens tunnels to.

use std::fmt;

/// The targets a server's tunnels may reach, as OpenSSH's `PermitOpen`: a list of `host:port`
/// patterns where either half may be `*`. Empty (the default) refuses every tunnel.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PermitOpen(Vec<(String, Option<u16>)>);

/// A malformed `host:port` pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad permitopen pattern `{0}`: expected HOST:PORT, either may be `*`")]
pub struct PermitOpenError(String);

impl PermitOpen {
    /// Refuses every target.
    pub fn none() -> Self {
        Self::default()
    }

    /// Permits every target (`*:*`). Only for servers whose callers are trusted with the whole
    /// network the server sees.
    pub fn any() -> Self {
        Self(vec![("*".to_owned(), None)])
    }

    /// Parses a comma- or space-separated list of `host:port` patterns
    /// (`"127.0.0.1:5432, db.internal:*"`).
    pub fn parse(list: &str) -> Result<Self, PermitOpenError> {
        list.split([',', ' '])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                let bad = || PermitOpenError(p.to_owned());
                let (host, port) = p.rsplit_once(':').ok_or_else(bad)?;
                let host = host.trim_start_matches('[').trim_end_matches(']');
                if host.is_empty() {
                    return Err(bad());
                }
                let port = match port {
                    "*" => None,
                    p => Some(p.parse::<u16>().map_err(|_| bad())?),
                };
                Ok((host.to_ascii_lowercase(), port))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether `host:port` is permitted. Hosts are compared as written (no DNS), ignoring case.
    pub fn allows(&self, host: &str, port: u32) -> bool {
        let host = host.to_ascii_lowercase();
        self.0
            .iter()
            .any(|(h, p)| (h == "*" || *h == host) && p.is_none_or(|p| u32::from(p) == port))
    }

    /// Whether nothing is permitted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for PermitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(h, p)| match p {
                Some(p) => format!("{h}:{p}"),
                None => format!("{h}:*"),
            }))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let p = PermitOpen::parse("127.0.0.1:5432, DB.internal:*  [::1]:80").unwrap();
        assert!(p.allows("127.0.0.1", 5432));
        assert!(!p.allows("127.0.0.1", 5433));
        assert!(p.allows("db.INTERNAL", 1));
        assert!(p.allows("::1", 80));
        assert!(
            !p.allows("localhost", 5432),
            "no DNS: names are compared as written"
        );
        assert!(PermitOpen::any().allows("anything", 9));
        assert!(!PermitOpen::none().allows("127.0.0.1", 1));
        for bad in ["nohost", ":80", "h:port", "h:70000"] {
            assert!(PermitOpen::parse(bad).is_err(), "{bad}");
        }
    }
}
