//! Path templates (`/users/{id}`, `/files/{*rest}`).

/// The capture names of a path template, in order (`/a/{x}/{*y}` → `x`, `y`).
pub(super) fn captures_of(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        if rest[start..].starts_with("{{") {
            rest = &rest[start + 2..];
            continue;
        }
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        let name = &rest[start + 1..start + end];
        out.push(name.trim_start_matches('*'));
        rest = &rest[start + end + 1..];
    }
    out
}
