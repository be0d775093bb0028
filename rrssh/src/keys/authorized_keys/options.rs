//! The options field of an `authorized_keys` line, read as sshd(8) reads it.
//!
//! ssh-key's `authorized_keys::Entry` splits the options from the key at the first space, so a
//! quoted value holding a space (`command="backup --full"`) does not parse there; this reader
//! keeps to sshd's syntax (quoted values with `\"` escapes, case-insensitive names) and only
//! hands the key itself to ssh-key.

/// The options of one line, in their order; an option may repeat (`permitopen`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyOptions(Vec<(String, Option<String>)>);

/// Options sshd knows that take a quoted value.
const VALUED: &[&str] = &[
    "command",
    "environment",
    "expiry-time",
    "from",
    "permitlisten",
    "permitopen",
    "principals",
    "tunnel",
];
/// Flags sshd knows.
const FLAGS: &[&str] = &[
    "agent-forwarding",
    "cert-authority",
    "no-agent-forwarding",
    "no-port-forwarding",
    "no-pty",
    "no-touch-required",
    "no-user-rc",
    "no-x11-forwarding",
    "port-forwarding",
    "pty",
    "restrict",
    "user-rc",
    "verify-required",
    "x11-forwarding",
];
/// rrssh's own options, each with a value.
pub(crate) const RRSSH_VALUED: &[&str] = &[
    "rrssh-groups",
    "rrssh-scopes",
    "rrssh-services",
    "rrssh-users",
];
/// Options that may appear once only (sshd refuses a second `command` or `from` too).
const ONCE: &[&str] = &[
    "command",
    "from",
    "rrssh-groups",
    "rrssh-scopes",
    "rrssh-services",
    "rrssh-users",
];

impl KeyOptions {
    /// Whether a flag (or any option of that name) is present.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    /// The first value of an option.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Every value of an option, in order (`permitopen` may repeat).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .filter_map(|(_, v)| v.as_deref())
    }

    /// What the options say of a pseudo-terminal, read as sshd reads them: the last of
    /// `restrict` and `no-pty` (`Some(false)`) or `pty` (`Some(true)`) decides, so
    /// `restrict,pty` permits one and `pty,restrict` does not; `None` when none of them is
    /// given.
    pub fn pty(&self) -> Option<bool> {
        self.0.iter().rev().find_map(|(n, _)| match n.as_str() {
            "pty" => Some(true),
            "no-pty" | "restrict" => Some(false),
            _ => None,
        })
    }

    /// Adds an option after the others (a certificate's restrictions on its login).
    pub(crate) fn push(&mut self, name: &str, value: Option<String>) {
        self.0.push((name.to_owned(), value));
    }

    /// Replaces every value of an option with this one.
    pub(crate) fn set(&mut self, name: &str, value: String) {
        self.0.retain(|(n, _)| n != name);
        self.0.push((name.to_owned(), Some(value)));
    }

    /// Every option, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_deref()))
    }

    /// Whether there are no options.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A set with one more option (for keys built in code).
    #[must_use]
    pub fn with(mut self, name: &str, value: Option<&str>) -> Self {
        self.0
            .push((name.to_ascii_lowercase(), value.map(str::to_owned)));
        self
    }
}

/// Splits a line into its options and the rest at the first blank outside quotes.
pub(super) fn split(line: &str) -> Result<(&str, &str), String> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => return Ok((&line[..i], line[i..].trim_start())),
            _ => {}
        }
    }
    Err(if quoted {
        "unterminated quote in the options".into()
    } else {
        "options but no key".into()
    })
}

/// Parses and checks the options field: names known to sshd or rrssh, values where they are
/// needed and nowhere else, no repeats of once-only options.
pub(super) fn parse(text: &str) -> Result<KeyOptions, String> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let end_name = rest.find(['=', ',']).unwrap_or(rest.len());
        let raw_name = &rest[..end_name];
        let name = raw_name.to_ascii_lowercase();
        rest = &rest[end_name..];
        let value = match rest.strip_prefix('=') {
            Some(r) => {
                let r = r
                    .strip_prefix('"')
                    .ok_or_else(|| format!("option `{name}` needs a quoted value"))?;
                let (value, after) =
                    unquote(r).ok_or_else(|| format!("option `{name}` has no closing quote"))?;
                rest = after;
                Some(value)
            }
            None => None,
        };
        check(&name, raw_name, value.as_deref())?;
        if ONCE.contains(&name.as_str()) && out.iter().any(|(n, _)| *n == name) {
            return Err(format!("option `{name}` is given twice"));
        }
        out.push((name, value));
        match rest.strip_prefix(',') {
            Some(r) => rest = r,
            None if rest.is_empty() => {}
            None => return Err(format!("expected `,` between options, found `{rest}`")),
        }
    }
    Ok(KeyOptions(out))
}

/// Reads a quoted value up to its closing quote (`\"` is a quote inside it).
fn unquote(r: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = r.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if r[i + 1..].starts_with('"') => {
                chars.next();
                value.push('"');
            }
            '"' => return Some((value, &r[i + 1..])),
            c => value.push(c),
        }
    }
    None
}

fn check(name: &str, raw: &str, value: Option<&str>) -> Result<(), String> {
    let valued = VALUED.contains(&name) || RRSSH_VALUED.contains(&name);
    if valued {
        if value.is_none() {
            return Err(format!("option `{name}` needs a value: {name}=\"…\""));
        }
    } else if FLAGS.contains(&name) {
        if value.is_some() {
            return Err(format!("option `{name}` takes no value"));
        }
    } else {
        return Err(format!(
            "unknown option `{raw}` (sshd would refuse this line too)"
        ));
    }
    match name {
        "verify-required" => Err(
            "`verify-required` (FIDO user verification) is not supported: rrssh cannot check it, so it refuses the line rather than ignore it"
                .into(),
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_with_spaces_commas_and_escapes() {
        let line = r#"command="echo \"a, b\" c",from="10.0.0.0/8",no-pty ssh-ed25519 AAAA"#;
        let (opts, rest) = split(line).unwrap();
        assert_eq!(rest, "ssh-ed25519 AAAA");
        let o = parse(opts).unwrap();
        assert_eq!(o.get("command"), Some(r#"echo "a, b" c"#));
        assert_eq!(o.get("from"), Some("10.0.0.0/8"));
        assert!(o.has("no-pty"));
    }

    #[test]
    fn the_last_of_restrict_no_pty_and_pty_decides() {
        for (opts, pty) in [
            ("from=\"10.0.0.1\"", None),
            ("pty", Some(true)),
            ("no-pty", Some(false)),
            ("restrict", Some(false)),
            ("restrict,pty", Some(true)),
            ("pty,restrict", Some(false)),
            ("no-pty,pty", Some(true)),
            ("restrict,pty,no-pty", Some(false)),
            ("PTY", Some(true)),
        ] {
            assert_eq!(parse(opts).unwrap().pty(), pty, "{opts}");
        }
    }

    #[test]
    fn repeats_and_mistakes() {
        let o = parse(r#"permitopen="a:1",PermitOpen="b:2""#).unwrap();
        assert_eq!(o.all("permitopen").collect::<Vec<_>>(), ["a:1", "b:2"]);
        for (bad, says) in [
            (r#"command="a",command="b""#, "given twice"),
            (r#"from="a",from="b""#, "given twice"),
            ("no-port-forwardng", "unknown option"),
            ("command", "needs a value"),
            (r#"no-pty="x""#, "takes no value"),
            ("verify-required", "not supported"),
            (r#"command="a"x"#, "expected `,`"),
            (r#"command=a"#, "quoted value"),
            (r#"command="a"#, "no closing quote"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
