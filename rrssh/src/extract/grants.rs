//! Scopes and groups: the names an `authorized_keys` line grants to its key.

use std::fmt;

/// A list of names granted to a key (scopes, groups or service names), parsed from an
/// `authorized_keys` option such as `rrssh-scopes="billing:read,admin"`.
///
/// A granted name matches a needed name if they are equal, if the granted one is `*`, or if it
/// ends with `:*` and the needed one starts with what is before the `*` (`billing:*` grants
/// `billing:read` and `billing:write`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Grants(Vec<String>);

/// A name in a grant list is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GrantsError(String);

impl Grants {
    /// Parses a comma-separated list. Names are made of letters, digits and `:_.-`, with an
    /// optional `*` at the end; empty names are refused.
    pub fn parse(list: &str) -> Result<Self, GrantsError> {
        let mut out = Vec::new();
        for name in list.split(',') {
            let name = name.trim();
            if name.is_empty() {
                return Err(GrantsError(format!("empty name in `{list}`")));
            }
            let body = name.strip_suffix('*').unwrap_or(name);
            if let Some(bad) = body
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || ":_.-".contains(*c)))
            {
                return Err(GrantsError(format!(
                    "`{name}` has the character `{bad}`; names use letters, digits and `:_.-`, and may end with `*`"
                )));
            }
            out.push(name.to_owned());
        }
        Ok(Self(out))
    }

    /// A list from names, unchecked.
    pub fn from_names<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        Self(names.into_iter().map(Into::into).collect())
    }

    /// Whether `needed` is granted.
    pub fn grants(&self, needed: &str) -> bool {
        self.0.iter().any(|g| match g.strip_suffix('*') {
            Some(prefix) => needed.starts_with(prefix),
            None => g == needed,
        })
    }

    /// The names as written.
    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Grants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.0).finish()
    }
}

impl fmt::Display for Grants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_star_and_prefix_grants() {
        let g = Grants::parse("billing:read, admin,ops:*").unwrap();
        assert!(g.grants("billing:read"));
        assert!(!g.grants("billing:write"));
        assert!(g.grants("admin"));
        assert!(g.grants("ops:restart"));
        assert!(!g.grants("opsx"));
        assert!(Grants::parse("*").unwrap().grants("anything"));
        assert!(!Grants::default().grants("admin"));
    }

    #[test]
    fn malformed_lists_are_refused_with_the_reason() {
        assert!(Grants::parse("a,,b").unwrap_err().0.contains("empty name"));
        let e = Grants::parse("billing read").unwrap_err().0;
        assert!(e.contains("character ` `"), "{e}");
        assert!(Grants::parse("a*b").is_err());
    }
}
