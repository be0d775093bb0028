//! What a web page may reach on an HTTP door of ours (the gateway, the web terminal): a
//! browser names the page's origin in `Origin`, and the `Host` it was sent to says whether a
//! DNS name was rebound onto our address.

use http::{HeaderMap, HeaderValue, header};

/// Whether `Origin`, when there is one, names the host the request was sent to (a browser
/// always sends it with a WebSocket and a cross-site POST; other clients may leave it out).
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(Ok(host))) = (
        origin.to_str(),
        headers.get(header::HOST).map(HeaderValue::to_str),
    ) else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| o.eq_ignore_ascii_case(host))
}

/// The host name of a `Host` value, without its port (`[::1]:80` gives `::1`).
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// Whether a request came to a name this door answers to: a loopback name or address
/// (`localhost`, `127.0.0.1`, `::1`), or one of `allowed` (host names, any case). A page whose
/// DNS name was rebound to our address sends its own name, and is refused.
pub(crate) fn host_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(Ok(host)) = headers.get(header::HOST).map(HeaderValue::to_str) else {
        return false;
    };
    let name = host_name(host);
    let loopback = name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| crate::keys::canonical_addr(ip).is_loopback());
    loopback || allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: Option<&str>, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = host {
            h.insert(header::HOST, HeaderValue::from_str(v).unwrap());
        }
        if let Some(v) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn loopback_and_allowed_hosts_only() {
        for ok in [
            "127.0.0.1:8080",
            "localhost",
            "LOCALHOST:80",
            "[::1]:8080",
            "127.1.2.3",
            "[::ffff:127.0.0.1]:80",
        ] {
            assert!(host_allowed(&headers(Some(ok), None), &[]), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "127.0.0.1.evil.example",
            "[::2]:80",
            "",
        ] {
            assert!(!host_allowed(&headers(Some(bad), None), &[]), "{bad}");
        }
        assert!(
            !host_allowed(&headers(None, None), &[]),
            "no Host, no entry"
        );
        let allowed = ["gw.internal".to_owned()];
        assert!(host_allowed(
            &headers(Some("GW.internal:8080"), None),
            &allowed
        ));
    }

    #[test]
    fn an_origin_must_name_the_host() {
        assert!(same_origin(&headers(Some("127.0.0.1:8080"), None)));
        assert!(same_origin(&headers(
            Some("127.0.0.1:8080"),
            Some("http://127.0.0.1:8080")
        )));
        assert!(!same_origin(&headers(
            Some("127.0.0.1:8080"),
            Some("http://evil.example")
        )));
        assert!(!same_origin(&headers(Some("127.0.0.1:8080"), Some("null"))));
        assert!(!same_origin(&headers(None, Some("http://127.0.0.1:8080"))));
    }
}
