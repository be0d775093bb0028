//! `from="…"`: the addresses a key may be used from, matched as sshd matches them.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use crate::keys::pattern::glob;

/// One entry of a `from=` list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// An address or CIDR block (`10.0.0.0/8`, `::1`).
    Net(IpNet),
    /// A wildcard pattern (`*`, `10.0.*`, `host-??`), matched against the address as text
    /// (rrssh does no DNS lookups, like sshd with `UseDNS no`).
    Glob(String),
}

/// A parsed `from=` list: comma-separated, each entry negated by a leading `!`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FromPatterns(Vec<(bool, Pattern)>);

impl FromPatterns {
    /// Parses a list; a malformed CIDR block (`10.0.0.1/8`, `/33`) is an error, as in sshd.
    pub(crate) fn parse(list: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for raw in list.split(',') {
            let (neg, p) = match raw.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, raw),
            };
            if p.is_empty() {
                return Err(format!("empty entry in from=\"{list}\""));
            }
            let pattern = if p.contains('/') {
                let net = IpNet::from_str(p).map_err(|_| format!("bad CIDR block `{p}`"))?;
                if net.trunc() != net {
                    return Err(format!(
                        "CIDR block `{p}` has bits set past its prefix (did you mean `{}`?)",
                        net.trunc()
                    ));
                }
                Pattern::Net(net)
            } else if let Ok(ip) = IpAddr::from_str(p) {
                Pattern::Net(IpNet::from(ip))
            } else {
                Pattern::Glob(p.to_ascii_lowercase())
            };
            out.push((neg, pattern));
        }
        Ok(Self(out))
    }

    /// Whether `addr` is admitted: some entry matches and no negated entry does. An IPv4
    /// address mapped into IPv6 (`::ffff:a.b.c.d`, as a `[::]` listener sees IPv4 clients) is
    /// matched as the IPv4 address, as sshd does.
    pub(crate) fn admits(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        let text = addr.to_string();
        let mut admitted = false;
        for (neg, p) in &self.0 {
            let hit = match p {
                Pattern::Net(net) => net.contains(&addr),
                Pattern::Glob(g) => glob(g, &text),
            };
            if hit && *neg {
                return false;
            }
            admitted |= hit;
        }
        admitted
    }
}

/// `::ffff:a.b.c.d` as `a.b.c.d`; every other address unchanged.
pub(crate) fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admits(list: &str, addr: &str) -> bool {
        FromPatterns::parse(list)
            .unwrap()
            .admits(addr.parse().unwrap())
    }

    #[test]
    fn cidr_negation_and_wildcards() {
        assert!(!admits("*,!127.0.0.0/8", "127.0.0.1"));
        assert!(admits("*,!127.0.0.0/8", "10.1.2.3"));
        assert!(admits("127.0.0.0/8", "127.3.2.1"));
        assert!(!admits("10.0.0.0/8", "127.0.0.1"));
        assert!(admits("10.0.*", "10.0.3.4"));
        assert!(!admits("10.0.*,!10.0.0.9", "10.0.0.9"));
        assert!(admits("::1", "::1"));
        assert!(admits("fd00::/8", "fd12::1"));
        assert!(
            !admits("!127.0.0.1", "127.0.0.1"),
            "only negations admit nobody"
        );
        assert!(
            !admits("!10.0.0.1", "127.0.0.1"),
            "only negations admit nobody"
        );
    }

    #[test]
    fn mapped_ipv4_is_matched_as_ipv4() {
        assert!(admits("127.0.0.1", "::ffff:127.0.0.1"));
        assert!(!admits("*,!127.0.0.1", "::ffff:127.0.0.1"));
        assert!(!admits("*,!127.0.0.0/8", "::ffff:127.0.0.5"));
        assert!(admits("127.0.0.*", "::ffff:127.0.0.5"));
    }

    #[test]
    fn malformed_blocks_are_errors() {
        for bad in ["10.0.0.1/8", "10.0.0.0/33", "x/8", "", "a,,b", "!"] {
            assert!(FromPatterns::parse(bad).is_err(), "{bad}");
        }
    }
}
