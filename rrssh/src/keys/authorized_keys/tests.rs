use std::time::{Duration, SystemTime};

use super::*;

const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIGXHk8PsPKv0B9q8YqnCjvX7hy6Pr3oSRXSgpZCbkrLA";

fn key() -> PublicKey {
    russh::keys::parse_public_key_base64(KEY).unwrap()
}

#[test]
fn parses_options_comments_and_reports_lines() {
    let text = format!(
        "# comment\n\nssh-ed25519 {KEY} ada@laptop\nfrom=\"10.0.*,!10.0.0.9\",rrssh-scopes=\"billing:read,admin\",no-pty ssh-ed25519 {KEY} with options\n"
    );
    let keys = AuthorizedKeys::parse(&text, "ak").unwrap();
    assert_eq!(keys.len(), 2);
    let first = keys.iter().next().unwrap();
    assert_eq!(
        (first.line, first.comment.as_deref()),
        (3, Some("ada@laptop"))
    );
    let second = keys.iter().nth(1).unwrap();
    assert_eq!(second.option("rrssh-scopes"), Some("billing:read,admin"));
    assert!(second.options.has("no-pty"));
    assert!(!second.allows_pty());
    assert!(second.allows_from(Some("10.0.3.4".parse().unwrap())));
    assert!(!second.allows_from(Some("10.0.0.9".parse().unwrap())));
    assert!(!second.allows_from(Some("192.168.1.1".parse().unwrap())));
    assert!(!second.allows_from(None));
}

#[test]
fn malformed_lines_name_the_line() {
    let e = AuthorizedKeys::parse(
        &format!("ssh-ed25519 {KEY}\nfrom=\"x ssh-ed25519 {KEY}\n"),
        "ak",
    )
    .unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.to_string().starts_with("ak line 2: "), "{e}");
    let e = AuthorizedKeys::parse("ssh-ed25519 !!!notbase64", "ak").unwrap_err();
    assert!(e.message.starts_with("bad key"), "{e}");
    let e = AuthorizedKeys::parse(&format!("ssh-rsa {KEY}"), "ak").unwrap_err();
    assert!(e.message.contains("but the line says ssh-rsa"), "{e}");
    for bad in [
        format!("from=\"10.0.0.1/8\" ssh-ed25519 {KEY}"),
        format!("expiry-time=\"2020\" ssh-ed25519 {KEY}"),
        format!("rrssh-users=\"../root\" ssh-ed25519 {KEY}"),
        format!("permitopen=\"a:1\",permitopen=\"nope\" ssh-ed25519 {KEY}"),
    ] {
        assert!(AuthorizedKeys::parse(&bad, "ak").is_err(), "{bad}");
    }
}

#[test]
fn a_key_logs_in_only_as_a_user_it_is_bound_to() {
    let now = SystemTime::now();
    let text = format!("rrssh-users=\"ada,deploy\" ssh-ed25519 {KEY}\n");
    let keys = AuthorizedKeys::parse(&text, "ak").unwrap();
    assert!(keys.authorize(&key(), "ada", None, now).is_ok());
    assert!(keys.authorize(&key(), "deploy", None, now).is_ok());
    assert_eq!(
        keys.authorize(&key(), "root", None, now).unwrap_err(),
        KeyRefusal::User
    );
    // No rrssh-users: bound to the file's owner, and to nobody in a file with no owner.
    let plain = AuthorizedKeys::parse(&format!("ssh-ed25519 {KEY}\n"), "ak").unwrap();
    assert!(plain.unbound().is_some());
    assert_eq!(
        plain.authorize(&key(), "root", None, now).unwrap_err(),
        KeyRefusal::User
    );
    let owned = plain.owned_by("ada");
    assert!(owned.unbound().is_none());
    assert!(owned.authorize(&key(), "ada", None, now).is_ok());
    assert!(owned.authorize(&key(), "root", None, now).is_err());
    let any =
        AuthorizedKeys::parse(&format!("rrssh-users=\"*\" ssh-ed25519 {KEY}\n"), "ak").unwrap();
    assert!(any.authorize(&key(), "anyone", None, now).is_ok());
}

#[test]
fn expiry_and_from_refuse_and_later_lines_are_read_on() {
    let now = SystemTime::now();
    let text = format!(
        "expiry-time=\"20200101Z\",rrssh-users=\"ada\" ssh-ed25519 {KEY} old\n\
         from=\"10.0.0.0/8\",rrssh-users=\"ada\" ssh-ed25519 {KEY} office\n"
    );
    let keys = AuthorizedKeys::parse(&text, "ak").unwrap();
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    assert_eq!(
        keys.authorize(&key(), "ada", Some(lo), now).unwrap_err(),
        KeyRefusal::From
    );
    let office: IpAddr = "10.1.1.1".parse().unwrap();
    let hit = keys.authorize(&key(), "ada", Some(office), now).unwrap();
    assert_eq!(hit.comment.as_deref(), Some("office"));
    // Before the expiry, the first line lets the key in from anywhere.
    let then = SystemTime::UNIX_EPOCH + Duration::from_secs(1_500_000_000);
    let hit = keys.authorize(&key(), "ada", Some(lo), then).unwrap();
    assert_eq!(hit.comment.as_deref(), Some("old"));
}

#[test]
fn user_names_safe_in_paths_and_command_lines() {
    for ok in ["ada", "deploy_2", "a.b-c", "A"] {
        assert!(valid_user_name(ok), "{ok}");
    }
    for bad in [
        "",
        "-oProxyCommand",
        ".",
        "..",
        "../x",
        "a/b",
        "a b",
        "a\0",
        &"x".repeat(65),
    ] {
        assert!(!valid_user_name(bad), "{bad:?}");
    }
}

#[test]
fn a_terminal_is_granted_by_pty_or_the_terminal_scope_and_forbidden_by_no_pty_or_restrict() {
    // (options, allows a pty, grants commands, grants a terminal)
    for (opts, allows_pty, commands, grants) in [
        ("", true, false, false),
        ("pty", true, true, true),
        (r#"rrssh-scopes="terminal""#, true, true, true),
        (r#"rrssh-scopes="billing:read,terminal""#, true, true, true),
        // Wildcards grant API scopes, never a shell.
        (r#"rrssh-scopes="*""#, true, false, false),
        (r#"rrssh-scopes="term*""#, true, false, false),
        ("restrict", false, false, false),
        ("restrict,pty", true, true, true),
        ("pty,restrict", false, false, false),
        // Commands without a pseudo-terminal, as sshd runs a no-pty key's.
        (r#"restrict,rrssh-scopes="terminal""#, false, true, false),
        (r#"no-pty,rrssh-scopes="terminal""#, false, true, false),
        ("no-pty", false, false, false),
        ("no-pty,pty", true, true, true),
    ] {
        let line = if opts.is_empty() {
            format!("ssh-ed25519 {KEY}")
        } else {
            format!("{opts} ssh-ed25519 {KEY}")
        };
        let keys = AuthorizedKeys::parse(&line, "ak").unwrap();
        let k = keys.iter().next().unwrap();
        assert_eq!(k.allows_pty(), allows_pty, "allows_pty for {opts:?}");
        assert_eq!(
            k.grants_commands(),
            commands,
            "grants_commands for {opts:?}"
        );
        assert_eq!(k.grants_terminal(), grants, "grants_terminal for {opts:?}");
    }
}
