//! Request items, as httpie takes them: `key=value` (a JSON string field), `key:=json` (a raw
//! JSON field), `key==value` (a query parameter), `Name:value` (a header); and `-H`, `--json`
//! and `-d`, which say the same in other words.

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

/// What the items and options make of a request.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Request {
    /// `key==value`, in order, percent-encoded.
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: HeaderMap,
    /// `key=value` and `key:=json`, in order.
    pub(crate) fields: Map<String, Value>,
}

/// The separators, longest first where two start alike: at the first position where one
/// matches, the longest one there wins (`a:=1` is a raw field, not a header `a` of `=1`).
const SEPARATORS: [&str; 4] = [":=", "==", "=", ":"];

/// Reads the items and the `-H` headers.
pub(crate) fn parse(items: &[String], headers: &[String]) -> Result<Request, String> {
    let mut req = Request::default();
    for h in headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| format!("-H `{h}` is not `Name: value`"))?;
        add_header(&mut req.headers, name.trim(), value.trim(), h)?;
    }
    for item in items {
        let (at, sep) = item
            .char_indices()
            .find_map(|(i, _)| {
                SEPARATORS
                    .iter()
                    .find(|s| item[i..].starts_with(**s))
                    .map(|s| (i, *s))
            })
            .ok_or_else(|| {
                format!(
                    "`{item}` is not a request item: key=value (a JSON field), key:=json (raw \
                     JSON), key==value (a query parameter) or Name:value (a header)"
                )
            })?;
        let (key, value) = (&item[..at], &item[at + sep.len()..]);
        if key.is_empty() {
            return Err(format!("`{item}` has no name before `{sep}`"));
        }
        match sep {
            "==" => req.query.push((key.to_owned(), value.to_owned())),
            "=" => {
                req.fields.insert(key.to_owned(), Value::from(value));
            }
            ":=" => {
                let v = serde_json::from_str(value)
                    .map_err(|e| format!("`{item}`: `{value}` is not JSON ({e})"))?;
                req.fields.insert(key.to_owned(), v);
            }
            _ => add_header(&mut req.headers, key, value, item)?,
        }
    }
    Ok(req)
}

fn add_header(headers: &mut HeaderMap, name: &str, value: &str, given: &str) -> Result<(), String> {
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("`{given}`: `{name}` is not a header name"))?;
    let value = HeaderValue::from_str(value)
        .map_err(|_| format!("`{given}`: the value is not a header value"))?;
    headers.append(name, value);
    Ok(())
}

/// `path` with the query parameters, percent-encoded.
pub(crate) fn with_query(path: String, query: &[(String, String)]) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    if query.is_empty() {
        return path;
    }
    let q = query
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, NON_ALPHANUMERIC),
                utf8_percent_encode(v, NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}{q}")
}

/// A body given inline, as `@file`, or `-` (standard input).
pub(crate) fn read_body(arg: &str, flag: &str) -> Result<Vec<u8>, String> {
    if arg == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)
            .map_err(|e| format!("{flag} -: cannot read standard input: {e}"))?;
        Ok(b)
    } else if let Some(file) = arg.strip_prefix('@') {
        std::fs::read(file).map_err(|e| format!("{flag} @{file}: {e}"))
    } else {
        Ok(arg.as_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(list: &[&str]) -> Result<Request, String> {
        parse(
            &list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
            &[],
        )
    }

    #[test]
    fn each_form_as_httpie_reads_it() {
        let r = items(&[
            "name=pears",
            "qty:=2",
            "tags:=[\"a\"]",
            "page==2",
            "X-Trace:abc",
            "url=http://x/?a=b",
            "time==12:00",
        ])
        .unwrap();
        assert_eq!(
            Value::Object(r.fields),
            serde_json::json!({"name": "pears", "qty": 2, "tags": ["a"], "url": "http://x/?a=b"})
        );
        assert_eq!(
            r.query,
            [("page".into(), "2".into()), ("time".into(), "12:00".into())]
        );
        assert_eq!(r.headers["x-trace"], "abc");
    }

    #[test]
    fn bad_items_say_what_is_wrong() {
        assert!(
            items(&["plain"])
                .unwrap_err()
                .contains("not a request item")
        );
        assert!(items(&["=x"]).unwrap_err().contains("no name"));
        assert!(items(&["n:={nope"]).unwrap_err().contains("is not JSON"));
        assert!(
            items(&["bad name:x"])
                .unwrap_err()
                .contains("not a header name")
        );
        let e = parse(&[], &["NoColon".to_owned()]).unwrap_err();
        assert!(e.contains("Name: value"), "{e}");
    }

    #[test]
    fn headers_from_h_and_the_query_encoded() {
        let r = parse(&[], &["Accept: text/plain".to_owned()]).unwrap();
        assert_eq!(r.headers["accept"], "text/plain");
        assert_eq!(
            with_query("/s".into(), &[("q".into(), "rust lang".into())]),
            "/s?q=rust%20lang"
        );
        assert_eq!(
            with_query("/s?a=1".into(), &[("b".into(), "2".into())]),
            "/s?a=1&b=2"
        );
    }
}
