//! Filling a path template (`/users/{id}`) with the values of a typed call.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use serde_json::Value;

use super::Error;

/// Characters kept as they are in a path segment: RFC 3986 unreserved.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// A catch-all capture (`{*rest}`) keeps its slashes.
const REST: &AsciiSet = &SEGMENT.remove(b'/');

/// One piece of a path template.
enum Piece<'a> {
    Text(&'a str),
    Capture { name: &'a str, rest: bool },
}

fn pieces(template: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        if start > 0 {
            out.push(Piece::Text(&rest[..start]));
        }
        let name = &rest[start + 1..start + len];
        out.push(match name.strip_prefix('*') {
            Some(name) => Piece::Capture { name, rest: true },
            None => Piece::Capture { name, rest: false },
        });
        rest = &rest[start + len + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

fn scalar(name: &str, v: &Value) -> Result<String, Error> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(Error::Encode(format!(
            "path capture `{name}` must be a single value, got {other}"
        ))),
    }
}

/// Fills `template` with `value`: a single value for one capture, a sequence in capture order,
/// or a struct/map by capture name. Values are percent-encoded.
pub(crate) fn fill<T: Serialize + ?Sized>(template: &str, value: &T) -> Result<String, Error> {
    let value = serde_json::to_value(value).map_err(|e| Error::Encode(e.to_string()))?;
    let pieces = pieces(template);
    let count = pieces
        .iter()
        .filter(|p| matches!(p, Piece::Capture { .. }))
        .count();
    let mut out = String::with_capacity(template.len() + 16);
    let mut index = 0;
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Capture { name, rest } => {
                let v = match &value {
                    Value::Array(items) if items.len() == count => &items[index],
                    Value::Object(map) => map.get(name).ok_or_else(|| {
                        Error::Encode(format!("no value for path capture `{name}`"))
                    })?,
                    Value::Array(items) => {
                        return Err(Error::Encode(format!(
                            "path `{template}` has {count} captures, got {} values",
                            items.len()
                        )));
                    }
                    single if count == 1 => single,
                    _ => {
                        return Err(Error::Encode(format!(
                            "path `{template}` needs {count} values"
                        )));
                    }
                };
                let text = scalar(name, v)?;
                let set = if rest { REST } else { SEGMENT };
                out.extend(utf8_percent_encode(&text, set));
                index += 1;
            }
        }
    }
    Ok(out)
}

/// Like [`fill`], for a template without captures.
pub(crate) fn plain(template: &str) -> String {
    template.to_owned()
}
