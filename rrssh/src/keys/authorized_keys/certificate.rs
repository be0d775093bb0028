//! OpenSSH user certificates (PROTOCOL.certkeys) as sshd(8) takes them through `cert-authority`
//! lines: signed by the line's key, within their validity, naming the login (or a name of the
//! line's `principals=`), their critical options honoured and their extensions narrowing what
//! the line grants.

use std::net::IpAddr;
use std::time::SystemTime;

use russh::keys::ssh_key::certificate::CertType;
use russh::keys::{Certificate, PublicKey};

use super::{AuthorizedKey, AuthorizedKeys};
use crate::extract::CertificateInfo;

impl AuthorizedKey {
    /// A CA whose user certificates log in as any of their principals (sshd's
    /// `TrustedUserCAKeys`): a `cert-authority` line bound to every user name.
    pub(crate) fn trusted_user_ca(ca: PublicKey) -> Self {
        let mut line = Self::new(ca);
        line.options.push("cert-authority", None);
        line.users = Some(vec!["*".to_owned()]);
        line
    }
}

impl AuthorizedKeys {
    /// The `cert-authority` line that lets `cert` log in as `user` from `addr` at `now`, made
    /// into the line the login gets (the certificate's key, with what the certificate takes
    /// away: no pseudo-terminal without `permit-pty`, no forwarding without
    /// `permit-port-forwarding`, its `force-command`; and a terminal granted by `permit-pty`
    /// unless the line forbids one), and what the certificate says; else
    /// why not. sshd reads on past a line that refuses; a certificate that is itself bad
    /// (expired, unknown critical option, …) is refused whatever the line.
    pub fn authorize_certificate(
        &self,
        cert: &Certificate,
        user: &str,
        addr: Option<IpAddr>,
        now: SystemTime,
    ) -> Result<(AuthorizedKey, CertificateInfo), String> {
        let mut why = "no cert-authority line names the certificate's CA".to_owned();
        for line in self
            .keys
            .iter()
            .filter(|k| k.options.has("cert-authority") && k.key.key_data() == cert.signature_key())
        {
            if !line.binds(user, self.owner.as_deref()) {
                why = "the CA's line is not bound to this user name".into();
            } else if !line.allows_from(addr) {
                why = "the CA's line has a from= that does not admit this address".into();
            } else if line.expired_at(now) {
                why = "the CA's line has an expiry-time in the past".into();
            } else if !names_login(cert, line, user) {
                why = match line.option("principals") {
                    Some(p) => format!("no principal of the certificate is in principals=\"{p}\""),
                    None => format!("the certificate is not for the principal {user}"),
                };
            } else {
                return admit(cert, line, addr, now);
            }
        }
        Err(why)
    }
}

/// rrssh's grants a certificate may carry as extensions, and the `authorized_keys` options
/// they narrow: `services@rrssh=billing,reports` is `rrssh-services="billing,reports"`.
pub const GRANTS: &[(&str, &str)] = &[
    ("services@rrssh", "rrssh-services"),
    ("scopes@rrssh", "rrssh-scopes"),
    ("groups@rrssh", "rrssh-groups"),
];

/// Whether the certificate names the login: one of the line's `principals="…"`, or else the
/// user name itself.
fn names_login(cert: &Certificate, line: &AuthorizedKey, user: &str) -> bool {
    let principals = cert.valid_principals();
    match line.option("principals") {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .any(|p| principals.iter().any(|c| c == p)),
        None => principals.iter().any(|c| c == user),
    }
}

/// Checks the certificate itself, and makes the line its login gets.
fn admit(
    cert: &Certificate,
    line: &AuthorizedKey,
    addr: Option<IpAddr>,
    now: SystemTime,
) -> Result<(AuthorizedKey, CertificateInfo), String> {
    let ca_fingerprint = crate::keys::ca::check_signed_now(cert, CertType::User, now)?;
    if cert.valid_principals().is_empty() {
        return Err("the certificate names no principal".into());
    }
    let mut login = line.clone();
    login.key = PublicKey::new(cert.public_key().clone(), cert.key_id());
    for (name, value) in cert.critical_options().iter() {
        match name.as_str() {
            "force-command" => match line.forced_command() {
                Some(own) if own != value => {
                    return Err(
                        "the certificate's force-command and the line's command= differ".into(),
                    );
                }
                Some(_) => {}
                None => login.options.push("command", Some(value.clone())),
            },
            "source-address" => {
                if !source_admits(value, addr)? {
                    return Err(format!(
                        "the certificate's source-address=\"{value}\" does not admit this address"
                    ));
                }
            }
            other => {
                return Err(format!(
                    "the certificate has a critical option rrssh does not know: {other}"
                ));
            }
        }
    }
    let extensions = cert.extensions();
    if !extensions.contains_key("permit-pty") {
        login.options.push("no-pty", None);
    } else if line.options.pty() != Some(false) {
        // The CA granted a terminal, and its line does not forbid one: the login is granted
        // one, as a key line's `pty` grants it.
        login.options.push("pty", None);
    }
    if !extensions.contains_key("permit-port-forwarding") {
        login.options.push("no-port-forwarding", None);
    }
    for (extension, option) in GRANTS {
        let Some(value) = extensions.get(*extension) else {
            continue;
        };
        let asked = crate::auth::Grants::parse(value)
            .map_err(|e| format!("the certificate's {extension} is malformed: {e}"))?;
        // The CA's line sets the most a certificate gets; the certificate names what it gets
        // within that.
        let kept: Vec<&String> = match line.option(option) {
            Some(allowed) => {
                let allowed = crate::auth::Grants::parse(allowed).unwrap_or_default();
                asked.names().iter().filter(|n| allowed.grants(n)).collect()
            }
            None => asked.names().iter().collect(),
        };
        if kept.is_empty() {
            return Err(format!(
                "the certificate's {extension}=\"{value}\" grants nothing its CA's line allows"
            ));
        }
        let kept: Vec<&str> = kept.iter().map(|s| s.as_str()).collect();
        login.options.set(option, kept.join(","));
    }
    let info = CertificateInfo {
        key_id: cert.key_id().to_owned(),
        serial: cert.serial(),
        principals: cert.valid_principals().to_vec(),
        valid_after: cert.valid_after_time(),
        valid_before: cert.valid_before_time(),
        ca: ca_fingerprint.to_string(),
        openssh: cert.to_openssh().unwrap_or_default(),
    };
    Ok((login, info))
}

/// Whether `addr` is in a `source-address` list (addresses and CIDR blocks, as sshd reads it);
/// a malformed list refuses the certificate.
fn source_admits(list: &str, addr: Option<IpAddr>) -> Result<bool, String> {
    let mut admitted = false;
    for entry in list.split(',').map(str::trim) {
        let net: ipnet::IpNet = match entry.parse::<ipnet::IpNet>() {
            Ok(net) => net,
            Err(_) => entry
                .parse::<IpAddr>()
                .map(ipnet::IpNet::from)
                .map_err(|_| {
                    format!("the certificate's source-address has a bad entry `{entry}`")
                })?,
        };
        if addr.is_some_and(|a| net.contains(&super::canonical_addr(a))) {
            admitted = true;
        }
    }
    Ok(admitted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(
        ca: &russh::keys::PrivateKey,
        key: &russh::keys::PrivateKey,
        edit: impl FnOnce(&mut crate::keys::CertificateRequest),
    ) -> Certificate {
        let mut request = crate::keys::CertificateRequest::user(
            "t",
            ["ada"],
            std::time::Duration::from_secs(600),
        );
        edit(&mut request);
        crate::keys::sign_certificate(ca, key.public_key(), &request).unwrap()
    }

    #[test]
    fn permit_pty_grants_a_terminal_unless_the_line_forbids_one() {
        let (ca, key) = (
            crate::keys::generate_ed25519("ca"),
            crate::keys::generate_ed25519("key"),
        );
        let ca_line = ca.public_key().to_openssh().unwrap();
        let with = signed(&ca, &key, |_| {});
        let without = signed(&ca, &key, |r| r.extensions.retain(|e| e != "permit-pty"));
        let now = SystemTime::now();
        for (options, cert, terminal) in [
            ("cert-authority", &with, true),
            ("cert-authority", &without, false),
            ("restrict,cert-authority", &with, false),
            ("no-pty,cert-authority", &with, false),
            ("restrict,pty,cert-authority", &with, true),
        ] {
            let keys = AuthorizedKeys::parse(&format!("{options} {ca_line}"), "ak")
                .unwrap()
                .owned_by("ada");
            let (login, info) = keys.authorize_certificate(cert, "ada", None, now).unwrap();
            assert_eq!(login.grants_terminal(), terminal, "{options}");
            assert_eq!(info.principals, ["ada"]);
            assert_eq!(login.key.key_data(), key.public_key().key_data());
        }
    }

    #[test]
    fn source_address_lists_take_addresses_and_blocks() {
        let v4 = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert!(source_admits("127.0.0.0/8", v4("127.0.0.1")).unwrap());
        assert!(source_admits("10.0.0.1, 127.0.0.1", v4("127.0.0.1")).unwrap());
        assert!(!source_admits("10.0.0.0/8", v4("127.0.0.1")).unwrap());
        assert!(source_admits("127.0.0.0/8", v4("::ffff:127.0.0.1")).unwrap());
        assert!(!source_admits("127.0.0.0/8", None).unwrap());
        assert!(source_admits("10.*", v4("10.0.0.1")).is_err());
    }
}
