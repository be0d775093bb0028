//! The HTTP callers a gateway knows: bearer tokens, each with a name and scopes.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::Peer;
use crate::auth::Grants;
use crate::auth::secret::constant_time_eq;
use crate::extract::PeerInfo;

/// The bearer tokens a [`Gateway`](super::Gateway) accepts, each naming a caller and the scopes
/// it holds (`call:NAME` to reach the peer `NAME`, `call:*` for every peer).
///
/// The file form has one token per line, `NAME TOKEN [SCOPE,SCOPE…]`; blank lines and lines
/// starting with `#` are skipped:
///
/// ```text
/// # name      token                              scopes
/// dashboard   6f1c0e7d9a4b43a8b2d1e5f0c3a7b9d2   call:inventory,call:billing
/// ops         0b8e2f4a6c1d3e5f7a9b1c3d5e7f9a1b   call:*
/// ```
///
/// Tokens are compared in constant time. A caller appears to the peer as the SSH user `NAME`
/// with the fingerprint `token:NAME`.
///
/// Clones share one table: [`replace`](Self::replace) on any of them (a reload of the file) is
/// seen by every gateway holding a clone, from its next request on.
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Arc<RwLock<Table>>,
}

/// Each token with its caller; swapped whole.
type Table = Arc<Vec<(Vec<u8>, Peer)>>;

/// A tokens file that could not be read or parsed; names the line.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}:{line}: {message}")]
pub struct TokensError {
    source_name: String,
    line: usize,
    message: String,
}

/// The shortest token accepted: 16 bytes (128 bits, written as 32 hex digits) or more.
pub const MIN_TOKEN_LEN: usize = 16;

impl Tokens {
    /// No tokens.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the caller `name`, known by `token`, holding `scopes`.
    ///
    /// # Panics
    /// If `token` is shorter than [`MIN_TOKEN_LEN`] or is already in the table.
    pub fn insert(&mut self, name: &str, token: &str, scopes: Grants) -> &mut Self {
        if let Err(e) = self.try_insert(name, token, scopes) {
            panic!("{e}");
        }
        self
    }

    fn try_insert(&mut self, name: &str, token: &str, scopes: Grants) -> Result<(), String> {
        if token.len() < MIN_TOKEN_LEN {
            return Err(format!(
                "the token of `{name}` is {} bytes long; at least {MIN_TOKEN_LEN} are needed",
                token.len()
            ));
        }
        if self.find(token.as_bytes()).is_some() {
            return Err(format!(
                "the token of `{name}` is already given to another caller"
            ));
        }
        let info = PeerInfo::new(name, format!("token:{name}")).scopes(scopes);
        let mut table = self.entries.write().unwrap_or_else(|e| e.into_inner());
        Arc::make_mut(&mut table).push((token.as_bytes().to_vec(), Peer::new(info)));
        Ok(())
    }

    /// Puts the tokens of `other` in force instead of these, for every clone of these (every
    /// gateway given them); requests under way keep the caller they were admitted as.
    pub fn replace(&self, other: &Tokens) {
        let new = other.table();
        let old = {
            let mut table = self.entries.write().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *table, new)
        };
        drop(old);
    }

    fn table(&self) -> Table {
        self.entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Parses the file form (see the type's docs); `source_name` names the file in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, TokensError> {
        let mut out = Self::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fail = |message: String| TokensError {
                source_name: source_name.to_owned(),
                line: i + 1,
                message,
            };
            let mut fields = line.split_whitespace();
            let (Some(name), Some(token)) = (fields.next(), fields.next()) else {
                return Err(fail("expected `NAME TOKEN [SCOPES]`".to_owned()));
            };
            let scopes = match fields.next() {
                Some(list) => Grants::parse(list).map_err(|e| fail(e.to_string()))?,
                None => Grants::default(),
            };
            if let Some(extra) = fields.next() {
                return Err(fail(format!(
                    "unexpected `{extra}` after the scopes (scopes are separated by commas, without spaces)"
                )));
            }
            out.try_insert(name, token, scopes).map_err(fail)?;
        }
        Ok(out)
    }

    /// Reads and parses a tokens file.
    pub fn read_file(path: impl AsRef<Path>) -> Result<Self, TokensError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| TokensError {
            source_name: path.display().to_string(),
            line: 0,
            message: e.to_string(),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The number of tokens.
    pub fn len(&self) -> usize {
        self.table().len()
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.table().is_empty()
    }

    /// The caller holding `token`. Every entry is compared, each in constant time.
    pub(crate) fn find(&self, token: &[u8]) -> Option<Peer> {
        let table = self.table();
        let mut found = None;
        for (t, peer) in table.iter() {
            if constant_time_eq(t, token) && found.is_none() {
                found = Some(peer);
            }
        }
        found.cloned()
    }
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let table = self.table();
        f.debug_list()
            .entries(table.iter().map(|(_, p)| p.user().to_owned()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "6f1c0e7d9a4b43a8b2d1e5f0c3a7b9d2";
    const T2: &str = "0b8e2f4a6c1d3e5f7a9b1c3d5e7f9a1b";

    #[test]
    fn parses_names_tokens_and_scopes() {
        let text = format!("# callers\n\ndash {T1} call:inventory,call:billing\nops {T2}\n");
        let t = Tokens::parse(&text, "tokens").unwrap();
        assert_eq!(t.len(), 2);
        let dash = t.find(T1.as_bytes()).unwrap();
        assert_eq!(dash.user(), "dash");
        assert_eq!(dash.fingerprint(), "token:dash");
        assert!(dash.has_scope("call:billing"));
        assert!(!dash.has_scope("call:other"));
        assert!(!t.find(T2.as_bytes()).unwrap().has_scope("call:inventory"));
        assert!(t.find(b"6f1c0e7d9a4b43a8b2d1e5f0c3a7b9d3").is_none());
        assert!(t.find(b"").is_none());
    }

    #[test]
    fn a_replacement_is_seen_by_every_clone() {
        let t = Tokens::parse(&format!("dash {T1}\n"), "tokens").unwrap();
        let held_by_a_gateway = t.clone();
        t.replace(&Tokens::parse(&format!("ops {T2}\n"), "tokens").unwrap());
        assert!(held_by_a_gateway.find(T1.as_bytes()).is_none());
        assert_eq!(held_by_a_gateway.find(T2.as_bytes()).unwrap().user(), "ops");
        assert_eq!(held_by_a_gateway.len(), 1);
    }

    #[test]
    fn errors_name_the_line() {
        for (text, needle) in [
            (
                format!("ok {T1}\nlonely\n"),
                "tokens:2: expected `NAME TOKEN",
            ),
            (
                "short abc\n".to_owned(),
                "tokens:1: the token of `short` is 3 bytes",
            ),
            (
                format!("a {T1}\nb {T1}\n"),
                "tokens:2: the token of `b` is already given",
            ),
            (
                format!("a {T1} call:x call:y\n"),
                "tokens:1: unexpected `call:y`",
            ),
        ] {
            let err = Tokens::parse(&text, "tokens").unwrap_err().to_string();
            assert!(err.starts_with(needle), "{err}");
        }
    }
}
