//! Floods against a server in a child process, each measured as the server's resident memory,
//! descriptors, tasks and log lines: the bounds in the README's reliability table. Heavy, so
//! `scripts/test` runs them alone after the other tests (`-- --ignored resources::`).

mod abuse;
mod budgets;
mod floods;
mod target;
mod web;
