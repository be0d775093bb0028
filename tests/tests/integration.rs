//! All integration tests, in one binary (each test binary costs a link on CI).

mod core;
mod gateway;
mod openssh;
mod ssh;
mod ui;
mod web_terminal;
mod wire;
