//! `rrssh completions SHELL` and `rrssh man`: the tool describing itself, from its own
//! command-line definition.

use super::*;
use clap::CommandFactory;

/// Writes the completion script for `shell` to stdout.
pub(super) fn completions(shell: clap_complete::Shell) -> Result<ExitCode, String> {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "rrssh", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// Writes the man page (roff) of the tool, or of one of its commands, to stdout.
pub(super) fn man(of: Option<&str>) -> Result<ExitCode, String> {
    let root = Cli::command();
    let page = match of {
        None => root,
        Some(name) => {
            let sub = root
                .find_subcommand(name)
                .ok_or_else(|| format!("no command `{name}` (see rrssh --help)"))?
                .clone();
            // Named as man(1) pages of subcommands are: rrssh-call.
            // (The name lives as long as the process: clap keeps it as a `&'static str`.)
            let full: &'static str = Box::leak(format!("rrssh-{name}").into_boxed_str());
            sub.name(full)
                .bin_name(full)
                .version(env!("CARGO_PKG_VERSION"))
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .map_err(|e| e.to_string())?;
    std::io::Write::write_all(&mut std::io::stdout(), &out).map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}
