//! Floods against a server in a child process, each measured as the server's resident memory,
//! descriptors, tasks and log lines: the bounds in the guide's reliability table (docs/src/reliability.md). Heavy, so
//! `scripts/test` runs them alone after the other tests (`-- --ignored resources::`).

mod abuse;
mod budgets;
mod floods;
mod target;
mod web;
