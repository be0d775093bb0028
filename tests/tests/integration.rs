//! All integration tests, in one binary (each test binary costs a link on CI).

/// Counts the bytes live on the heap, so a server in a child process can say what it still
/// holds, whatever pages the system allocator keeps.
#[global_allocator]
pub(crate) static ALLOCATOR: cap::Cap<std::alloc::System> =
    cap::Cap::new(std::alloc::System, usize::MAX);

mod cluster;
mod core;
mod gateway;
mod openssh;
mod proxies;
mod recovery;
mod resources;
mod ssh;
mod web_terminal;
mod websocket;
mod wire;

/// Reports a test that ran nothing because a tool is missing: on standard error, and as a line
/// in the file `RRSSH_SKIP_LOG` names, which `scripts/test` counts at the end of the run.
pub(crate) fn skipped(why: &str) {
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
