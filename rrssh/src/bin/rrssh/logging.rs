//! The tool's log: what a running server, gateway or tunnel says (its addresses, peers coming
//! and going, reloads, stopping) and the library's warnings, in one stream, each line with its
//! time and level; coloured only on a terminal (`NO_COLOR` turns colour off), as text or as
//! JSON lines (`--log-format json`). `-q` keeps errors only; `-v` adds the library's debug
//! lines; `RUST_LOG` overrides both.

use std::io::IsTerminal;

/// The tool's own lines are logged with this target.
pub(crate) const TARGET: &str = "rrssh::cli";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// `2026-12-03T10:47:45.123456Z  INFO hub listening on …`
    #[default]
    Text,
    /// One JSON object a line: `timestamp`, `level`, `message`, the event's fields, and the
    /// span it happened in.
    Json,
}

/// Where log lines go: stdout for the commands that run until stopped (their log is their
/// output), stderr for the others (whose stdout is the answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// Whether colour may be written to a terminal: not when `NO_COLOR` is set and not empty.
pub(crate) fn colour_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Sets up the log for the rest of the run.
pub(crate) fn init(verbose: u8, quiet: bool, format: LogFormat, stream: Stream) {
    let filter = match (quiet, verbose) {
        (true, _) => "error".to_owned(),
        (false, 0) => format!("{TARGET}=info,warn"),
        (false, 1) => format!("{TARGET}=info,rrssh=debug,info"),
        (false, _) => format!("{TARGET}=info,rrssh=trace,debug"),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let terminal = match stream {
        Stream::Stdout => std::io::stdout().is_terminal(),
        Stream::Stderr => std::io::stderr().is_terminal(),
    };
    let ansi = terminal && colour_allowed() && format == LogFormat::Text;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_target(false);
    match (format, stream) {
        (LogFormat::Text, Stream::Stdout) => builder.with_writer(std::io::stdout).init(),
        (LogFormat::Text, Stream::Stderr) => builder.with_writer(std::io::stderr).init(),
        (LogFormat::Json, Stream::Stdout) => json(builder).with_writer(std::io::stdout).init(),
        (LogFormat::Json, Stream::Stderr) => json(builder).with_writer(std::io::stderr).init(),
    }
}

type Builder = tracing_subscriber::fmt::SubscriberBuilder<
    tracing_subscriber::fmt::format::DefaultFields,
    tracing_subscriber::fmt::format::Format,
    tracing_subscriber::EnvFilter,
>;

fn json(
    builder: Builder,
) -> tracing_subscriber::fmt::SubscriberBuilder<
    tracing_subscriber::fmt::format::JsonFields,
    tracing_subscriber::fmt::format::Format<tracing_subscriber::fmt::format::Json>,
    tracing_subscriber::EnvFilter,
> {
    builder
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
}
