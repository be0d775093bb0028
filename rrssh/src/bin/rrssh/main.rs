//! `rrssh`: the command-line tool for rrssh services (what curl is to HTTP): keys, calls,
//! streams, route listing, and a hub.

mod args;
mod commands;
mod login;
mod output;
mod target;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let filter = if cli.verbose > 0 {
        "rrssh=debug,info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match commands::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rrssh: {e}");
            ExitCode::from(1)
        }
    }
}
