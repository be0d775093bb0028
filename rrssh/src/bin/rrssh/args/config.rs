//! `--config FILE`: a TOML file of a server command's flags, one key per flag
//! (`host-key = "/var/lib/rrssh/host_key"`, `relay = true`, `allow-host = ["a", "b"]`), read
//! before the command line, whose own flags override it; and `--check-config`'s listing of the
//! settings in effect, which reads back as such a file.

use std::ffi::{OsStr, OsString};
use std::path::Path;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

/// The commands that take `--config`.
const COMMANDS: &[&str] = &["serve", "hub", "gateway"];

/// Keys a file may not hold: they are about the file itself, or not settings at all.
const NOT_SETTINGS: &[&str] = &["config", "check-config", "help", "version"];

/// `argv` with the settings of the `--config` file of a server command put right after the
/// command's name, as flags, so that the command line's own (after them) override them. The
/// command line is returned unchanged when it names no such command or no `--config`.
pub(crate) fn expand(argv: Vec<OsString>, cli: &Command) -> Result<Vec<OsString>, String> {
    // The command is the first word that is not a flag (the global flags take no value).
    let Some(at) = argv
        .iter()
        .skip(1)
        .position(|a| !a.to_string_lossy().starts_with('-'))
        .map(|i| i + 1)
    else {
        return Ok(argv);
    };
    let name = argv[at].to_string_lossy().into_owned();
    if !COMMANDS.contains(&name.as_str()) {
        return Ok(argv);
    }
    let Some(command) = cli.find_subcommand(&name) else {
        return Ok(argv);
    };
    let own = &argv[at + 1..];
    let mut files = Vec::new();
    let mut words = own.iter().take_while(|a| *a != "--");
    while let Some(word) = words.next() {
        let word = word.to_string_lossy();
        if word == "--config" {
            // Without a value, clap says what is missing.
            let Some(path) = words.next() else {
                return Ok(argv);
            };
            files.push(OsString::from(path));
        } else if let Some(path) = word.strip_prefix("--config=") {
            files.push(OsString::from(path));
        }
    }
    let path = match files.as_slice() {
        [] => return Ok(argv),
        [one] => Path::new(one),
        _ => return Err("--config: give one file".to_owned()),
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("--config {}: {e}", path.display()))?;
    let flags =
        flags(&text, command, own).map_err(|e| format!("--config {}: {e}", path.display()))?;
    let mut out = argv[..=at].to_vec();
    out.extend(flags);
    out.extend_from_slice(own);
    Ok(out)
}

/// The flags a file's settings stand for, given the command line's own words (`given`): a list
/// the command line gives replaces the file's rather than adding to it.
fn flags(text: &str, command: &Command, given: &[OsString]) -> Result<Vec<OsString>, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    let mut out = Vec::new();
    for (key, value) in &table {
        let long = key.replace('_', "-");
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()))
            .filter(|_| !NOT_SETTINGS.contains(&long.as_str()))
            .ok_or_else(|| unknown(key, command))?;
        let flag = format!("--{long}");
        match arg.get_action() {
            ArgAction::SetTrue => match value {
                toml::Value::Boolean(true) => out.push(flag.into()),
                toml::Value::Boolean(false) => {}
                _ => return Err(format!("`{key}` is true or false")),
            },
            ArgAction::Append => {
                if given_on_command_line(arg, given) {
                    continue;
                }
                let items = match value {
                    toml::Value::Array(items) => items.iter().collect(),
                    one => vec![one],
                };
                for item in items {
                    out.push(format!("{flag}={}", scalar(key, item)?).into());
                }
            }
            _ => out.push(format!("{flag}={}", scalar(key, value)?).into()),
        }
    }
    Ok(out)
}

/// A setting's value as its flag takes it.
fn scalar(key: &str, value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(n) => Ok(n.to_string()),
        toml::Value::Float(x) => Ok(x.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Array(_) => Err(format!("`{key}` takes one value, not a list")),
        toml::Value::Table(_) => Err(format!("`{key}` takes a value, not a table")),
        toml::Value::Datetime(_) => Err(format!("`{key}` takes a string, not a date")),
    }
}

/// Whether the command line gives `arg` itself (`--name V`, `--name=V`, `-n V`, `-nV`).
fn given_on_command_line(arg: &Arg, given: &[OsString]) -> bool {
    let long = arg.get_long().map(|l| format!("--{l}"));
    let short = arg.get_short().map(|s| format!("-{s}"));
    given
        .iter()
        .map(|w| w.to_string_lossy())
        .take_while(|w| w != "--")
        .any(|w| {
            long.as_ref()
                .is_some_and(|l| w == l.as_str() || w.starts_with(&format!("{l}=")))
                || short.as_ref().is_some_and(|s| w.starts_with(s.as_str()))
        })
}

/// The error for a key that is no setting of `command`, with the nearest one.
fn unknown(key: &str, command: &Command) -> String {
    let nearest = command
        .get_arguments()
        .filter_map(Arg::get_long)
        .filter(|l| !NOT_SETTINGS.contains(l))
        .map(|l| (strsim::jaro_winkler(&key.replace('_', "-"), l), l))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let name = command.get_name();
    match nearest {
        Some((_, l)) => format!("unknown setting `{key}` for rrssh {name}; did you mean `{l}`?"),
        None => format!("unknown setting `{key}` for rrssh {name} (see rrssh {name} --help)"),
    }
}

/// The settings of `matches` (a server command's) in effect, defaults included, as a `--config`
/// file: what `--check-config` prints.
pub(crate) fn effective(command: &Command, matches: &ArgMatches) -> String {
    let mut out = format!(
        "# rrssh {}: the settings in effect (defaults, --config and flags)\n",
        command.get_name()
    );
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else {
            continue;
        };
        if NOT_SETTINGS.contains(&long) {
            continue;
        }
        let id = arg.get_id().as_str();
        let Some(values) = matches.get_raw(id) else {
            continue;
        };
        let values: Vec<&OsStr> = values.collect();
        // Defaults are shown as comments: read back, they apply as defaults again (a default
        // given as a flag would need the flags it `requires`).
        if matches.value_source(id) == Some(ValueSource::DefaultValue) {
            out.push_str("# ");
        }
        let line = match arg.get_action() {
            ArgAction::SetTrue | ArgAction::SetFalse => {
                let on = matches.get_flag(id);
                format!("{long} = {on}")
            }
            ArgAction::Append => {
                let items: Vec<String> = values.iter().map(|v| toml_value(v)).collect();
                format!("{long} = [{}]", items.join(", "))
            }
            _ => match values.first() {
                Some(v) => format!("{long} = {}", toml_value(v)),
                None => continue,
            },
        };
        out.push_str(&line);
        if matches.value_source(id) == Some(ValueSource::DefaultValue) {
            out.push_str(" (default)");
        }
        out.push('\n');
    }
    out
}

/// A value as TOML writes it: digits bare, anything else a quoted string.
fn toml_value(v: &OsStr) -> String {
    let s = v.to_string_lossy();
    if !s.is_empty() && s.len() < 19 && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.into_owned();
    }
    let mut quoted = String::with_capacity(s.len() + 2);
    quoted.push('"');
    for c in s.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::{effective, expand};
    use clap::{Arg, ArgAction, Command};
    use std::ffi::OsString;

    fn cli() -> Command {
        Command::new("rrssh").args_override_self(true).subcommand(
            Command::new("serve")
                .arg(Arg::new("config").long("config"))
                .arg(
                    Arg::new("listen")
                        .long("listen")
                        .default_value("127.0.0.1:8022"),
                )
                .arg(Arg::new("host_key").long("host-key"))
                .arg(Arg::new("relay").long("relay").action(ArgAction::SetTrue))
                .arg(
                    Arg::new("identity")
                        .short('i')
                        .long("identity")
                        .action(ArgAction::Append),
                ),
        )
    }

    fn argv(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    fn with_file(text: &str, words: &[&str]) -> Result<Vec<String>, String> {
        let dir = std::env::temp_dir().join(format!("rrssh-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("{}.toml", text.len()));
        std::fs::write(&file, text).unwrap();
        let mut all = vec!["rrssh", "serve", "--config", file.to_str().unwrap()];
        all.extend_from_slice(words);
        let out = expand(argv(&all), &cli());
        let _ = std::fs::remove_file(&file);
        out.map(|v| v.into_iter().map(|w| w.into_string().unwrap()).collect())
    }

    #[test]
    fn settings_become_flags_before_the_command_lines_own() {
        let text =
            "listen = \"0.0.0.0:22\"\nhost_key = \"hk\"\nrelay = true\nidentity = [\"a\", \"b\"]\n";
        let out = with_file(text, &["--listen", "127.0.0.1:1"]).unwrap();
        let words: Vec<&String> = out.iter().filter(|w| !w.ends_with(".toml")).collect();
        assert_eq!(
            words,
            [
                "rrssh",
                "serve",
                "--host-key=hk",
                "--identity=a",
                "--identity=b",
                "--listen=0.0.0.0:22",
                "--relay",
                "--config",
                "--listen",
                "127.0.0.1:1"
            ]
        );
        // The command line's last word wins.
        let m = cli().try_get_matches_from(&out).unwrap();
        let m = m.subcommand_matches("serve").unwrap();
        assert_eq!(m.get_one::<String>("listen").unwrap(), "127.0.0.1:1");
    }

    #[test]
    fn a_list_on_the_command_line_replaces_the_files() {
        let out = with_file("identity = [\"a\"]\n", &["-i", "c"]).unwrap();
        assert!(!out.iter().any(|w| w == "--identity=a"), "{out:?}");
        let out = with_file("identity = \"a\"\nrelay = false\n", &[]).unwrap();
        assert_eq!(out[..4], ["rrssh", "serve", "--identity=a", "--config"]);
        assert_eq!(out.len(), 5);
    }

    #[test]
    fn mistakes_are_named() {
        let e = with_file("lisen = \"x\"\n", &[]).unwrap_err();
        assert!(
            e.contains("unknown setting `lisen` for rrssh serve; did you mean `listen`?"),
            "{e}"
        );
        let e = with_file("zzz = 1\n", &[]).unwrap_err();
        assert!(e.contains("unknown setting `zzz`"), "{e}");
        let e = with_file("config = \"other.toml\"\n", &[]).unwrap_err();
        assert!(e.contains("unknown setting `config`"), "{e}");
        let e = with_file("relay = \"yes\"\n", &[]).unwrap_err();
        assert!(e.contains("`relay` is true or false"), "{e}");
        let e = with_file("listen = [\"a\"]\n", &[]).unwrap_err();
        assert!(e.contains("not a list"), "{e}");
        let e = with_file("[listen]\nx = 1\n", &[]).unwrap_err();
        assert!(e.contains("not a table"), "{e}");
        let e = with_file("listen = \n", &[]).unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        let e = expand(
            argv(&["rrssh", "serve", "--config", "/nonexistent/x.toml"]),
            &cli(),
        )
        .unwrap_err();
        assert!(e.contains("/nonexistent/x.toml"), "{e}");
    }

    #[test]
    fn other_commands_and_lines_without_config_pass_unchanged() {
        for words in [
            &["rrssh", "call", "--config", "x"][..],
            &["rrssh", "serve", "--listen", "a"],
            &["rrssh", "-v", "serve", "--", "--config", "x"],
            &["rrssh"],
        ] {
            assert_eq!(expand(argv(words), &cli()).unwrap(), argv(words));
        }
    }

    #[test]
    fn the_settings_in_effect_read_back_the_same() {
        let words = [
            "rrssh",
            "serve",
            "--host-key",
            "a \"b\"",
            "--relay",
            "-i",
            "x",
        ];
        let m = cli().try_get_matches_from(words).unwrap();
        let serve = cli();
        let serve = serve.find_subcommand("serve").unwrap();
        let text = effective(serve, m.subcommand_matches("serve").unwrap());
        assert!(
            text.contains("# listen = \"127.0.0.1:8022\" (default)\n"),
            "{text}"
        );
        assert!(text.contains("host-key = \"a \\\"b\\\"\"\n"), "{text}");
        assert!(text.contains("relay = true\n"), "{text}");
        assert!(text.contains("identity = [\"x\"]\n"), "{text}");
        let again = super::flags(&text, serve, &[]).unwrap();
        let mut all = argv(&["rrssh", "serve"]);
        all.extend(again);
        let m2 = cli().try_get_matches_from(all).unwrap();
        assert_eq!(
            effective(serve, m2.subcommand_matches("serve").unwrap()),
            text
        );
    }
}
