//! Checking a route path literal and listing its captures.

/// A capture in a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Capture {
    pub(crate) name: String,
    /// `{*name}`: matches the rest of the path.
    pub(crate) rest: bool,
}

/// Why a path literal is wrong, and where (a byte index into the path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathError {
    pub(crate) index: usize,
    pub(crate) message: String,
}

impl PathError {
    fn at(index: usize, message: impl Into<String>) -> Self {
        Self {
            index,
            message: message.into(),
        }
    }

    pub(crate) fn render(&self, path: &str) -> String {
        format!(
            "invalid route path `{path}` at index {}: {}\n  help: paths look like \"/users/{{id}}\" or \"/files/{{*rest}}\"",
            self.index, self.message
        )
    }
}

/// Parses a path template, returning its captures in order.
pub(crate) fn parse(path: &str) -> Result<Vec<Capture>, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::at(0, "expected `/` at the start"));
    }
    let bytes = path.as_bytes();
    let mut captures: Vec<Capture> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => {
                let start = i;
                let Some(len) = path[i..].find('}') else {
                    return Err(PathError::at(start, "`{` is never closed with `}`"));
                };
                let inner = &path[i + 1..i + len];
                let (name, rest) = match inner.strip_prefix('*') {
                    Some(n) => (n, true),
                    None => (inner, false),
                };
                if name.is_empty() {
                    return Err(PathError::at(start, "a capture needs a name: `{id}`"));
                }
                if let Some(off) = name.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                    let at = start + 1 + usize::from(rest) + off;
                    return Err(PathError::at(
                        at,
                        "capture names may only hold letters, digits and `_`",
                    ));
                }
                if name.as_bytes()[0].is_ascii_digit() {
                    return Err(PathError::at(
                        start + 1,
                        "capture names cannot start with a digit",
                    ));
                }
                if start > 0 && bytes[start - 1] != b'/' {
                    return Err(PathError::at(
                        start,
                        "a capture must take a whole segment: put `/` before `{`",
                    ));
                }
                let end = i + len;
                if end + 1 < bytes.len() && bytes[end + 1] != b'/' {
                    return Err(PathError::at(
                        end + 1,
                        "a capture must take a whole segment: put `/` after `}`",
                    ));
                }
                if rest && end + 1 != bytes.len() {
                    return Err(PathError::at(
                        start,
                        "a catch-all capture `{*name}` must end the path",
                    ));
                }
                if captures.iter().any(|c| c.name == name) {
                    return Err(PathError::at(
                        start,
                        format!("capture `{name}` appears twice"),
                    ));
                }
                captures.push(Capture {
                    name: name.to_owned(),
                    rest,
                });
                i = end + 1;
            }
            b'}' => return Err(PathError::at(i, "unexpected `}`")),
            b'?' | b'#' => {
                return Err(PathError::at(
                    i,
                    "a route path cannot hold a query or fragment",
                ));
            }
            b if b.is_ascii_whitespace() || b.is_ascii_control() => {
                return Err(PathError::at(
                    i,
                    "a route path cannot hold spaces or control characters",
                ));
            }
            _ => i += 1,
        }
    }
    Ok(captures)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &str) -> Vec<String> {
        parse(p).unwrap().into_iter().map(|c| c.name).collect()
    }

    #[test]
    fn captures_in_order() {
        assert_eq!(names("/"), Vec::<String>::new());
        assert_eq!(names("/users/{id}"), ["id"]);
        assert_eq!(names("/o/{org}/r/{repo}"), ["org", "repo"]);
        let rest = parse("/files/{*path}").unwrap();
        assert_eq!(
            rest,
            [Capture {
                name: "path".into(),
                rest: true
            }]
        );
    }

    #[test]
    fn errors_point_into_the_literal() {
        assert_eq!(parse("users").unwrap_err().index, 0);
        assert_eq!(parse("/users/{id").unwrap_err().index, 7);
        assert_eq!(parse("/users/}").unwrap_err().index, 7);
        assert_eq!(parse("/users/{}").unwrap_err().index, 7);
        assert_eq!(parse("/users/{i-d}").unwrap_err().index, 9);
        assert_eq!(parse("/a/{*rest}/b").unwrap_err().index, 3);
        assert_eq!(parse("/a/x{id}").unwrap_err().index, 4);
        assert_eq!(parse("/a/{id}x").unwrap_err().index, 7);
        assert_eq!(parse("/a/{id}/{id}").unwrap_err().index, 8);
        assert_eq!(parse("/a?b=1").unwrap_err().index, 2);
        assert_eq!(parse("/a b").unwrap_err().index, 2);
    }

    #[test]
    fn rendered_error_names_the_index() {
        let e = parse("/users/{id").unwrap_err();
        assert!(
            e.render("/users/{id")
                .contains("at index 7: `{` is never closed")
        );
    }
}
