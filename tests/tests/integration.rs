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

pub(crate) use rrssh_test_support::skipped;
