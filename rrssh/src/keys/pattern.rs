//! OpenSSH's wildcard patterns (`*`, `?`), as `from=` and `known_hosts` use them.

/// `*` and `?` wildcard matching, ignoring ASCII case.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    // Iterative matching with one backtrack point: linear in practice, never exponential.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(b'?') => {
                pi += 1;
                ti += 1;
            }
            Some(c) if c.eq_ignore_ascii_case(&t[ti]) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_is_linear_on_hostile_patterns() {
        let p = "*a".repeat(50);
        let t = "a".repeat(5000) + "b";
        assert!(!glob(&p, &t));
        assert!(glob("a*b?d", "AxxbXd"));
        assert!(!glob("a*b?d", "abd"));
    }
}
