//! `authorized_keys` options as sshd(8) reads them: one file, read by a real `sshd` and by an
//! rrssh server, and the same `ssh` command against each must have the same outcome.

use super::{TempDir, TwoServers, openssh_available, ponger, write_key};
use rrssh::keys::{PrivateKey, generate_ed25519};

/// One key's line and what `ssh` runs with it.
struct Case {
    name: &'static str,
    options: String,
    /// Arguments after the host alias (a command), or `-W host:port` before it.
    args: Vec<String>,
    /// Whether `-W` is used (the target replaces the command).
    stdio_forward: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_mean_what_they_mean_to_sshd() {
    if !openssh_available() {
        return;
    }
    let (p1, p2, p3) = (ponger().await, ponger().await, ponger().await);
    let w = |p: u16| Some(format!("127.0.0.1:{p}"));
    let echo = || vec!["echo".to_owned(), "ran".to_owned()];
    let cases = vec![
        Case {
            name: "command= is forced, with SSH_ORIGINAL_COMMAND",
            options: r#"command="echo forced:$SSH_ORIGINAL_COMMAND""#.into(),
            args: vec!["echo".into(), "asked".into()],
            stdio_forward: None,
        },
        Case {
            name: "expiry-time in the past",
            options: r#"expiry-time="20200101""#.into(),
            args: echo(),
            stdio_forward: None,
        },
        Case {
            name: "expiry-time in the future",
            options: r#"expiry-time="29990101""#.into(),
            args: echo(),
            stdio_forward: None,
        },
        Case {
            name: "from= negated CIDR",
            options: r#"from="*,!127.0.0.0/8""#.into(),
            args: echo(),
            stdio_forward: None,
        },
        Case {
            name: "from= CIDR",
            options: r#"from="127.0.0.0/8""#.into(),
            args: echo(),
            stdio_forward: None,
        },
        Case {
            name: "from= another network",
            options: r#"from="10.0.0.0/8,192.168.*""#.into(),
            args: echo(),
            stdio_forward: None,
        },
        Case {
            name: "repeated permitopen: the second",
            options: format!(r#"permitopen="127.0.0.1:{p1}",permitopen="127.0.0.1:{p2}""#),
            args: vec![],
            stdio_forward: w(p2),
        },
        Case {
            name: "repeated permitopen: the first",
            options: format!(r#"permitopen="127.0.0.1:{p1}",permitopen="127.0.0.1:{p2}""#),
            args: vec![],
            stdio_forward: w(p1),
        },
        Case {
            name: "repeated permitopen: neither",
            options: format!(r#"permitopen="127.0.0.1:{p1}",permitopen="127.0.0.1:{p2}""#),
            args: vec![],
            stdio_forward: w(p3),
        },
        Case {
            name: "restrict turns forwarding off",
            options: "restrict".into(),
            args: vec![],
            stdio_forward: w(p1),
        },
        Case {
            name: "restrict,port-forwarding turns it back on",
            options: "restrict,port-forwarding".into(),
            args: vec![],
            stdio_forward: w(p1),
        },
        Case {
            name: "no-port-forwarding",
            options: "no-port-forwarding".into(),
            args: vec![],
            stdio_forward: w(p1),
        },
    ];
    let keys: Vec<PrivateKey> = cases.iter().map(|c| generate_ed25519(c.name)).collect();
    let text: String = cases
        .iter()
        .zip(&keys)
        .map(|(c, k)| format!("{} {}\n", c.options, k.public_key().to_openssh().unwrap()))
        .collect();
    let dir = TempDir::new("authorized-keys-options");
    let servers = TwoServers::start(&dir, &text).await;
    let mut differ = Vec::new();
    for (i, (case, key)) in cases.iter().zip(&keys).enumerate() {
        let id = write_key(&dir, &format!("id_{i}"), key);
        let forward = case.stdio_forward.as_deref();
        let [theirs, ours] = servers
            .both(&dir, &i.to_string(), &id, &case.args, forward)
            .await;
        println!("{:<45} sshd {theirs:?}  rrssh {ours:?}", case.name);
        if theirs != ours {
            differ.push(case.name);
        }
    }
    assert!(differ.is_empty(), "rrssh differs from sshd on: {differ:?}");
}
