//! What an [`Authorize`](super::Authorize) layer lets through.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use crate::Peer;

/// Who may call: decided from the call's [`Peer`] (its key, user, and the scopes and groups its
/// `authorized_keys` line grants).
///
/// ```
/// use rrssh::auth::Rule;
///
/// let rule = Rule::scope("billing:write").or(Rule::group("ops"));
/// assert_eq!(rule.to_string(), "scope `billing:write` or group `ops`");
/// ```
#[derive(Clone)]
pub struct Rule(Arc<Kind>);

enum Kind {
    Authenticated,
    Scope(String),
    Group(String),
    Keys(BTreeSet<String>),
    Users(BTreeSet<String>),
    Custom(String, Box<dyn Fn(&Peer) -> bool + Send + Sync>),
    Any(Vec<Rule>),
    All(Vec<Rule>),
}

impl Rule {
    fn of(kind: Kind) -> Self {
        Self(Arc::new(kind))
    }

    /// Any authenticated peer.
    pub fn authenticated() -> Self {
        Self::of(Kind::Authenticated)
    }

    /// Peers whose key is granted `scope` (`rrssh-scopes="…"` in `authorized_keys`).
    pub fn scope(scope: impl Into<String>) -> Self {
        Self::of(Kind::Scope(scope.into()))
    }

    /// Peers whose key is in the group (`rrssh-groups="…"` in `authorized_keys`).
    pub fn group(group: impl Into<String>) -> Self {
        Self::of(Kind::Group(group.into()))
    }

    /// Peers whose key has one of these fingerprints (`SHA256:…`).
    pub fn keys<I: IntoIterator<Item = S>, S: Into<String>>(fingerprints: I) -> Self {
        Self::of(Kind::Keys(
            fingerprints.into_iter().map(Into::into).collect(),
        ))
    }

    /// Peers that logged in as one of these SSH users.
    pub fn users<I: IntoIterator<Item = S>, S: Into<String>>(users: I) -> Self {
        Self::of(Kind::Users(users.into_iter().map(Into::into).collect()))
    }

    /// Peers for which `check` holds; `description` says what it requires, for the 403 message.
    pub fn custom(
        description: impl Into<String>,
        check: impl Fn(&Peer) -> bool + Send + Sync + 'static,
    ) -> Self {
        Self::of(Kind::Custom(description.into(), Box::new(check)))
    }

    /// Either rule.
    #[must_use]
    pub fn or(self, other: Rule) -> Self {
        Self::of(Kind::Any(vec![self, other]))
    }

    /// Both rules.
    #[must_use]
    pub fn and(self, other: Rule) -> Self {
        Self::of(Kind::All(vec![self, other]))
    }

    /// Whether `peer` may call.
    pub fn allows(&self, peer: &Peer) -> bool {
        match &*self.0 {
            Kind::Authenticated => true,
            Kind::Scope(s) => peer.scopes().grants(s),
            Kind::Group(g) => peer.groups().grants(g),
            Kind::Keys(k) => k.contains(peer.fingerprint()),
            Kind::Users(u) => u.contains(peer.user()),
            Kind::Custom(_, f) => f(peer),
            Kind::Any(rules) => rules.iter().any(|r| r.allows(peer)),
            Kind::All(rules) => rules.iter().all(|r| r.allows(peer)),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>().join(", ");
        match &*self.0 {
            Kind::Authenticated => f.write_str("an authenticated peer"),
            Kind::Scope(s) => write!(f, "scope `{s}`"),
            Kind::Group(g) => write!(f, "group `{g}`"),
            Kind::Keys(k) => write!(f, "one of the keys {}", list(k)),
            Kind::Users(u) => write!(f, "one of the users {}", list(u)),
            Kind::Custom(d, _) => f.write_str(d),
            Kind::Any(rules) => join(f, rules, " or "),
            Kind::All(rules) => join(f, rules, " and "),
        }
    }
}

fn join(f: &mut fmt::Formatter<'_>, rules: &[Rule], sep: &str) -> fmt::Result {
    for (i, r) in rules.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write!(f, "{r}")?;
    }
    Ok(())
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rule({self})")
    }
}
