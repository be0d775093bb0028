//! The proxy the environment names, as curl reads it: `ALL_PROXY`, else `HTTPS_PROXY` (the
//! proxy that reaches port 443 on networks with nothing else), lower-case names first; none
//! for a host `NO_PROXY` lists, nor for this machine (`localhost`, loopback addresses), which
//! no proxy reaches.

use super::{Proxy, ProxyError};

/// The proxy to dial `host` through, from the environment (`None`: dial directly).
pub fn from_env(host: &str) -> Result<Option<Proxy>, ProxyError> {
    choose(&|name| std::env::var(name).ok(), host)
}

fn var(get: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    get(&name.to_ascii_lowercase())
        .or_else(|| get(name))
        .filter(|v| !v.trim().is_empty())
}

pub(super) fn choose(
    get: &dyn Fn(&str) -> Option<String>,
    host: &str,
) -> Result<Option<Proxy>, ProxyError> {
    let Some(url) = var(get, "ALL_PROXY").or_else(|| var(get, "HTTPS_PROXY")) else {
        return Ok(None);
    };
    if excluded("localhost,127.0.0.0/8,::1", host) {
        return Ok(None);
    }
    if var(get, "NO_PROXY").is_some_and(|list| excluded(&list, host)) {
        return Ok(None);
    }
    Proxy::parse(url.trim()).map(Some)
}

/// Whether `NO_PROXY`'s `list` names `host`: `*`, the name or a parent domain (`corp.example`
/// or `.corp.example`), an address, or a network (`10.0.0.0/8`); ports are ignored.
fn excluded(list: &str, host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let ip = host.parse::<std::net::IpAddr>().ok();
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            if let (Some(ip), Ok(net)) = (ip, entry.parse::<ipnet::IpNet>()) {
                return net.contains(&ip);
            }
            let entry = match entry.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
                _ => entry,
            };
            let entry = entry.trim_start_matches('[').trim_end_matches(']');
            if let (Some(ip), Ok(e)) = (ip, entry.parse::<std::net::IpAddr>()) {
                return ip == e;
            }
            let entry = entry.trim_start_matches('.').to_ascii_lowercase();
            !entry.is_empty()
                && (host == entry || host.strip_suffix(&entry).is_some_and(|p| p.ends_with('.')))
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn with(vars: &[(&str, &str)], host: &str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        choose(&|n| map.get(n).cloned(), host)
            .unwrap()
            .map(|p| p.to_string())
    }

    #[test]
    fn all_proxy_then_https_proxy_lower_case_first() {
        assert_eq!(with(&[], "h"), None);
        assert_eq!(
            with(&[("HTTPS_PROXY", "http://a:1")], "h").unwrap(),
            "http://a:1"
        );
        assert_eq!(
            with(
                &[
                    ("HTTPS_PROXY", "http://a:1"),
                    ("ALL_PROXY", "socks5h://b:2")
                ],
                "h"
            )
            .unwrap(),
            "socks5h://b:2"
        );
        assert_eq!(
            with(
                &[
                    ("https_proxy", "http://low:1"),
                    ("HTTPS_PROXY", "http://up:1")
                ],
                "h"
            )
            .unwrap(),
            "http://low:1"
        );
        assert_eq!(with(&[("ALL_PROXY", "  ")], "h"), None);
    }

    #[test]
    fn no_proxy_names_hosts_domains_addresses_and_networks() {
        let p = [("ALL_PROXY", "http://p:1")];
        let no = |list: &str, host: &str| {
            let mut v = p.to_vec();
            v.push(("NO_PROXY", list));
            with(&v, host).is_none()
        };
        assert!(no("*", "anything"));
        assert!(no("corp.example", "corp.example"));
        assert!(no("corp.example", "hub.CORP.example"));
        assert!(no(".corp.example", "hub.corp.example"));
        assert!(!no("corp.example", "evilcorp.example"));
        assert!(no("10.9.9.9", "10.9.9.9"));
        // This machine is never dialed through the environment's proxy.
        assert!(with(&p, "127.0.0.1").is_none() && with(&p, "localhost").is_none());
        assert!(with(&p, "::1").is_none() && with(&p, "127.8.0.1").is_none());
        assert!(no("10.0.0.0/8", "10.1.2.3"));
        assert!(!no("10.0.0.0/8", "11.1.2.3"));
        assert!(no("hub:8022", "hub"));
        assert!(no("::1", "[::1]"));
        assert!(!no("", "hub"));
    }

    #[test]
    fn a_bad_url_in_the_environment_is_an_error() {
        let map: HashMap<String, String> =
            [("ALL_PROXY".to_owned(), "proxy:3128".to_owned())].into();
        assert!(choose(&|n| map.get(n).cloned(), "h").is_err());
    }
}
