//! `rrssh`: the command-line tool for rrssh services (what curl is to HTTP): keys, calls,
//! streams, route listing, and a hub.

mod args;
mod commands;
mod logging;
mod login;
mod output;
mod target;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

#[tokio::main]
async fn main() -> ExitCode {
    let command = args::Cli::command();
    // A server command's `--config FILE` becomes flags before the command line's own.
    let argv = match args::expand(std::env::args_os().collect(), &command) {
        Ok(argv) => argv,
        Err(e) => {
            eprintln!("rrssh: {e}");
            return ExitCode::from(2);
        }
    };
    let matches = command.clone().get_matches_from(argv);
    let cli = args::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let stream = if cli.command.runs_until_stopped() {
        logging::Stream::Stdout
    } else {
        logging::Stream::Stderr
    };
    logging::init(cli.verbose, cli.quiet, cli.log_format, stream);
    if let Some((name, sub)) = matches.subcommand()
        && let Ok(Some(true)) = sub.try_get_one::<bool>("check_config").map(|c| c.copied())
        && let Some(command) = command.find_subcommand(name)
    {
        print!("{}", args::effective(command, sub));
    }
    match commands::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rrssh: {e}");
            ExitCode::from(1)
        }
    }
}
