//! Proxy URLs: `http://`, `socks5://`, `socks5h://`, with an optional `user:password@`.

use super::{Kind, Proxy, ProxyError};

/// `%XX` decoded (user names and passwords may hold `@`, `:` or `%` that way).
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The URL with its password hidden, for errors.
fn shown(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((auth, host)) => {
                let user = auth.split_once(':').map_or(auth, |(u, _)| u);
                format!("{scheme}://{user}:…@{host}")
            }
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

pub(super) fn parse(url: &str) -> Result<Proxy, ProxyError> {
    let bad = |why: &str| ProxyError::BadUrl {
        url: shown(url),
        why: why.to_owned(),
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("no scheme: use http://, socks5:// or socks5h://"))?;
    let (kind, default_port) = match scheme.to_ascii_lowercase().as_str() {
        "http" => (Kind::HttpConnect, 80),
        "socks5" => (Kind::Socks5 { remote_dns: false }, 1080),
        "socks5h" => (Kind::Socks5 { remote_dns: true }, 1080),
        "https" => {
            return Err(bad(
                "a proxy spoken to over TLS is not supported; use http://",
            ));
        }
        _ => return Err(bad("unknown scheme: use http://, socks5:// or socks5h://")),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#']) {
        return Err(bad("a proxy URL has no path"));
    }
    let (auth, hostport) = match rest.rsplit_once('@') {
        Some((auth, hostport)) => {
            let (user, pass) = auth
                .split_once(':')
                .ok_or_else(|| bad("credentials are user:password"))?;
            let user = percent_decode(user).ok_or_else(|| bad("bad %-escape in the user"))?;
            let pass = percent_decode(pass).ok_or_else(|| bad("bad %-escape in the password"))?;
            (Some((user, pass)), hostport)
        }
        None => (None, rest),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after `]`"))?),
        };
        (format!("[{h}]"), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (hostport.to_owned(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(bad("no host"));
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("bad port"))?,
        None => default_port,
    };
    Ok(Proxy {
        kind,
        addr: format!("{host}:{port}"),
        auth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_schemes_and_their_default_ports() {
        let p = parse("http://proxy.corp").unwrap();
        assert_eq!(
            (p.kind, p.addr.as_str(), p.auth),
            (Kind::HttpConnect, "proxy.corp:80", None)
        );
        let p = parse("socks5://10.0.0.1:9050/").unwrap();
        assert_eq!(p.kind, Kind::Socks5 { remote_dns: false });
        assert_eq!(p.addr, "10.0.0.1:9050");
        let p = parse("SOCKS5H://[::1]").unwrap();
        assert_eq!(p.kind, Kind::Socks5 { remote_dns: true });
        assert_eq!(p.addr, "[::1]:1080");
    }

    #[test]
    fn credentials_are_percent_decoded_and_never_shown() {
        let p = parse("http://ada%40corp:p%3Ass%25@proxy:3128").unwrap();
        assert_eq!(p.auth, Some(("ada@corp".to_owned(), "p:ss%".to_owned())));
        assert!(!format!("{p:?} {p}").contains("p:ss"), "{p:?}");
        let e = parse("http://ada:secret@proxy:0").unwrap_err().to_string();
        assert!(e.contains("bad port") && !e.contains("secret"), "{e}");
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (url, why) in [
            ("proxy:3128", "no scheme"),
            ("ftp://proxy", "unknown scheme"),
            ("https://proxy", "TLS"),
            ("http://", "no host"),
            ("http://proxy:port", "bad port"),
            ("http://proxy:70000", "bad port"),
            ("http://proxy/path", "no path"),
            ("http://user@proxy", "user:password"),
            ("http://u:%zz@proxy", "%-escape"),
            ("http://[::1", "unclosed"),
        ] {
            let e = parse(url).unwrap_err().to_string();
            assert!(e.contains(why), "{url}: {e}");
        }
    }
}
