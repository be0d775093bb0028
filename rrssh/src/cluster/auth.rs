//! How a hub proves itself to the NATS server, as any NATS client does: a user and password or
//! a token (given as such or in the URL's userinfo), an NKey seed, a `.creds` file, and TLS with
//! a CA of its own and a client certificate.

use std::fmt;
use std::path::PathBuf;

use percent_encoding::percent_decode_str;

/// The credentials and TLS settings a hub connects to NATS with. Secrets are never printed.
#[derive(Clone, Default)]
pub(crate) struct NatsAuth {
    pub(crate) user: Option<(String, String)>,
    pub(crate) token: Option<String>,
    pub(crate) nkey: Option<String>,
    pub(crate) creds: Option<PathBuf>,
    pub(crate) tls_roots: Vec<PathBuf>,
    pub(crate) tls_client: Option<(PathBuf, PathBuf)>,
    pub(crate) tls_required: bool,
}

impl fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = if self.creds.is_some() {
            "creds file"
        } else if self.nkey.is_some() {
            "nkey"
        } else if self.token.is_some() {
            "token"
        } else if self.user.is_some() {
            "user and password"
        } else {
            "none"
        };
        f.debug_struct("NatsAuth")
            .field("method", &method)
            .field("user", &self.user.as_ref().map(|(u, _)| u))
            .field("creds", &self.creds)
            .field("tls_roots", &self.tls_roots)
            .field("tls_client", &self.tls_client.as_ref().map(|(c, _)| c))
            .field("tls_required", &self.tls_required)
            .finish()
    }
}

/// A NATS URL with its userinfo taken out: `nats://user:pass@host` gives a user and password,
/// `nats://token@host` a token (percent-decoded both). The URL returned is safe to log.
pub(crate) fn split_userinfo(url: &str) -> (String, Option<UrlCredentials>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), None);
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return (url.to_owned(), None);
    };
    let (info, host) = (&rest[..at], &rest[at + 1..]);
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    let creds = match info.split_once(':') {
        Some((u, p)) => UrlCredentials::User(decode(u), decode(p)),
        None => UrlCredentials::Token(decode(info)),
    };
    (format!("{scheme}://{host}"), Some(creds))
}

/// Credentials found in a URL.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum UrlCredentials {
    User(String, String),
    Token(String),
}

impl NatsAuth {
    /// Takes the URL's credentials, unless credentials were set some other way.
    pub(crate) fn with_url(mut self, creds: Option<UrlCredentials>) -> Self {
        let set = self.user.is_some()
            || self.token.is_some()
            || self.nkey.is_some()
            || self.creds.is_some();
        match creds {
            Some(UrlCredentials::User(u, p)) if !set => self.user = Some((u, p)),
            Some(UrlCredentials::Token(t)) if !set => self.token = Some(t),
            _ => {}
        }
        self
    }

    /// The options async-nats connects with. Fails when a file named here cannot be read.
    pub(crate) async fn options(&self) -> std::io::Result<async_nats::ConnectOptions> {
        let mut o = match &self.creds {
            Some(path) => async_nats::ConnectOptions::with_credentials_file(path).await?,
            None => async_nats::ConnectOptions::new(),
        };
        if let Some((u, p)) = &self.user {
            o = o.user_and_password(u.clone(), p.clone());
        }
        if let Some(t) = &self.token {
            o = o.token(t.clone());
        }
        if let Some(seed) = &self.nkey {
            o = o.nkey(seed.clone());
        }
        for ca in &self.tls_roots {
            o = o.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &self.tls_client {
            o = o.add_client_certificate(cert.clone(), key.clone());
        }
        if self.tls_required || !self.tls_roots.is_empty() || self.tls_client.is_some() {
            o = o.require_tls(true);
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_taken_out_of_the_url() {
        let (url, c) = split_userinfo("nats://hub:s%40cret@127.0.0.1:4222");
        assert_eq!(url, "nats://127.0.0.1:4222");
        assert!(c == Some(UrlCredentials::User("hub".into(), "s@cret".into())));
        let (url, c) = split_userinfo("tls://T0KEN@nats.internal");
        assert_eq!(url, "tls://nats.internal");
        assert!(c == Some(UrlCredentials::Token("T0KEN".into())));
        let (url, c) = split_userinfo("nats://127.0.0.1:4222/x@y");
        assert_eq!(
            url, "nats://127.0.0.1:4222/x@y",
            "an @ after the host is not userinfo"
        );
        assert!(c.is_none());
        assert!(split_userinfo("127.0.0.1").1.is_none());
    }

    #[test]
    fn secrets_are_never_printed_and_explicit_credentials_win() {
        let a = NatsAuth {
            user: Some(("hub".into(), "hunter2".into())),
            ..NatsAuth::default()
        }
        .with_url(Some(UrlCredentials::Token("urltoken".into())));
        let shown = format!("{a:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("urltoken"),
            "{shown}"
        );
        assert!(
            a.token.is_none(),
            "the URL's token does not add to a user and password"
        );
        let b = NatsAuth::default().with_url(Some(UrlCredentials::Token("t".into())));
        assert_eq!(b.token.as_deref(), Some("t"));
    }
}
