//! Printing JSON: pretty and coloured on a terminal, as received when piped.

use std::io::{IsTerminal, Write};

use serde_json::Value;

use crate::args::Color;

/// Whether to print for a person (pretty, coloured, tables) rather than for a program.
pub(crate) fn pretty(color: Color) -> bool {
    match color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal() && crate::logging::colour_allowed(),
    }
}

/// Prints a body: pretty and coloured for a person (if it is JSON), as received otherwise.
pub(crate) fn print_body(bytes: &[u8], color: Color) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if pretty(color)
        && let Ok(v) = serde_json::from_slice::<Value>(bytes)
    {
        let mut s = String::new();
        colour(&v, 0, &mut s);
        writeln!(out, "{s}")?;
    } else {
        out.write_all(bytes)?;
        if !bytes.ends_with(b"\n") && !bytes.is_empty() {
            out.write_all(b"\n")?;
        }
    }
    out.flush()
}

const KEY: &str = "\x1b[34;1m";
const STR: &str = "\x1b[32m";
const NUM: &str = "\x1b[36m";
const LIT: &str = "\x1b[35m";
const END: &str = "\x1b[0m";

fn colour(v: &Value, indent: usize, out: &mut String) {
    let pad = |n: usize| "  ".repeat(n);
    match v {
        Value::Null | Value::Bool(_) => out.push_str(&format!("{LIT}{v}{END}")),
        Value::Number(_) => out.push_str(&format!("{NUM}{v}{END}")),
        Value::String(_) => out.push_str(&format!("{STR}{v}{END}")),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                out.push_str(&pad(indent + 1));
                colour(item, indent + 1, out);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(indent));
            out.push(']');
        }
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Object(map) => {
            out.push_str("{\n");
            for (i, (k, item)) in map.iter().enumerate() {
                out.push_str(&format!(
                    "{}{KEY}{}{END}: ",
                    pad(indent + 1),
                    Value::from(k.as_str())
                ));
                colour(item, indent + 1, out);
                out.push_str(if i + 1 < map.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(indent));
            out.push('}');
        }
    }
}
