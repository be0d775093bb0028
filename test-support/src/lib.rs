//! What rrssh's test suites (`tests/`, `rrssh/tests/`) and its benchmark share: child processes
//! killed when dropped, free ports on 127.0.0.1, certificates made with `openssl`, and a real
//! HTTP proxy (`tinyproxy`).

mod certificates;
mod process;

pub use self::certificates::{Pki, openssl};
pub use self::process::{Child, free_port, listening, spawn_until_listening, tinyproxy};

/// Reports a test that ran nothing because a tool is missing: on standard error, and as a line
/// in the file `RRSSH_SKIP_LOG` names, which `scripts/test` counts at the end of the run.
pub fn skipped(why: &str) {
    eprintln!("skipped: {why}");
    if let Some(path) = std::env::var_os("RRSSH_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{why}");
        }
    }
}

/// Reports `tool` missing for `what`: a failure when the environment variable `require` is
/// set (as CI sets it, after installing the tool), else a skip, counted.
pub fn missing(require: &str, what: &str) {
    assert!(
        std::env::var_os(require).is_none(),
        "{what} is required ({require} is set)"
    );
    skipped(what);
}
