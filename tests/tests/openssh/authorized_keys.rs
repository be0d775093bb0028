//! `authorized_keys` options as sshd(8) reads them: one file, read by a real `sshd` and by an
//! rrssh server, and the same `ssh` command against each must have the same outcome.

use std::process::Stdio;
use std::time::Duration;

use rrssh::keys::{AuthorizedKeys, PrivateKey, generate_ed25519};
use rrssh::terminal::Terminal;
use rrssh::tunnel::PermitOpen;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{
    Sshd, TempDir, current_user, known_hosts_line, openssh_available, ssh_config, write_key,
};

/// One key's line and what `ssh` runs with it.
struct Case {
    name: &'static str,
    options: String,
    /// Arguments after the host alias (a command), or `-W host:port` before it.
    args: Vec<String>,
    /// Whether `-W` is used (the target replaces the command).
    stdio_forward: Option<String>,
}

/// A TCP server on 127.0.0.1 answering every connection with `pong PORT` and closing.
async fn ponger() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let _ = s.write_all(format!("pong {port}\n").as_bytes()).await;
        }
    });
    port
}

async fn run_ssh(config: &std::path::Path, alias: &str, case: &Case) -> (bool, String) {
    let mut cmd = tokio::process::Command::new("ssh");
    cmd.arg("-F").arg(config);
    if let Some(target) = &case.stdio_forward {
        cmd.arg("-W").arg(target);
    }
    cmd.arg(alias).args(&case.args);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), stdout.read_to_end(&mut out));
    read.await.expect("ssh finishes").unwrap();
    let status = child.wait().await.unwrap();
    let text = String::from_utf8_lossy(&out)
        .replace('\r', "")
        .trim()
        .to_owned();
    (status.success(), text)
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
    let host = generate_ed25519("host");
    let dir = TempDir::new("authorized-keys-options");
    let sshd = Sshd::start_with_keys(&dir, &host, &text, "").await;
    let user = current_user();
    let rrssh = rrssh::Server::new()
        .host_key(host.clone())
        .authorized_keys(
            AuthorizedKeys::parse(&text, "authorized_keys")
                .unwrap()
                .owned_by(user.clone()),
        )
        // sshd's own default: a terminal for every key its line does not forbid one.
        .terminal(Terminal::shell("/bin/sh").for_every_key())
        .permit_open(PermitOpen::any())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let kh = dir.path("known_hosts");
    std::fs::write(
        &kh,
        known_hosts_line(sshd.port, &host) + &known_hosts_line(rrssh.local_addr().port(), &host),
    )
    .unwrap();
    let mut differ = Vec::new();
    for (i, (case, key)) in cases.iter().zip(&keys).enumerate() {
        let id = write_key(&dir, &format!("id_{i}"), key);
        let to_sshd = ssh_config(&dir, &format!("sshd{i}"), sshd.port, &user, &id, &kh);
        let to_rrssh = ssh_config(
            &dir,
            &format!("rrssh{i}"),
            rrssh.local_addr().port(),
            &user,
            &id,
            &kh,
        );
        let theirs = run_ssh(&to_sshd, &format!("sshd{i}"), case).await;
        let ours = run_ssh(&to_rrssh, &format!("rrssh{i}"), case).await;
        println!("{:<45} sshd {theirs:?}  rrssh {ours:?}", case.name);
        if theirs != ours {
            differ.push(case.name);
        }
    }
    assert!(differ.is_empty(), "rrssh differs from sshd on: {differ:?}");
}
