//! rrssh over a spawned OpenSSH `ssh` against an rrssh server.

use std::time::Duration;

use rrssh::client::{CallExt, Error};
use rrssh::keys::{AuthorizedKeys, generate_ed25519};
use rrssh::{Client, Server};

use super::{
    TempDir, check_verbs, known_hosts_line, openssh_available, ssh_config, verbs, write_key,
};

struct Setup {
    hub: rrssh::Hub,
    dir: TempDir,
    config: std::path::PathBuf,
}

async fn setup(correct_host_key: bool) -> Setup {
    let host = generate_ed25519("rrssh-host");
    let client = generate_ed25519("ada@laptop");
    let hub = Server::new()
        .router(verbs())
        .host_key(host.clone())
        .authorized_keys(AuthorizedKeys::from_keys([client.public_key().clone()]).owned_by("ada"))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let dir = TempDir::new("over-ssh");
    let id = write_key(&dir, "id_ed25519", &client);
    let shown = if correct_host_key {
        host
    } else {
        generate_ed25519("impostor")
    };
    let kh = dir.path("known_hosts");
    std::fs::write(&kh, known_hosts_line(hub.local_addr().port(), &shown)).unwrap();
    let config = ssh_config(&dir, "api", hub.local_addr().port(), "ada", &id, &kh);
    Setup { hub, dir, config }
}

fn command(s: &Setup) -> Vec<String> {
    rrssh::transport::ssh_command("api", &["-F", s.config.to_str().unwrap()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_verb_and_a_stream_over_a_spawned_ssh() {
    if !openssh_available() {
        return;
    }
    let s = setup(true).await;
    let cmd = command(&s);
    println!("carrier: {}", cmd.join(" "));
    let c = Client::over_command(&cmd).await.unwrap();
    check_verbs(&c).await;
    // The server sees OpenSSH's authentication: the user and the key from the ssh_config.
    let who = c.get("/whoami").receive_text().await.unwrap();
    println!("the server sees: {who}");
    assert!(who.starts_with("ada SHA256:"), "{who}");
    c.close().await;
    drop(s.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_host_key_gives_openssh_own_error() {
    if !openssh_available() {
        return;
    }
    let s = setup(false).await;
    let err = Client::over_command(command(&s)).await.unwrap_err();
    let msg = err.to_string();
    println!("{msg}");
    assert!(msg.starts_with("ssh exited with 255"), "{msg}");
    assert!(msg.contains("Host key verification failed."), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_ssh_dies_calls_in_flight_fail_unavailable() {
    if !openssh_available() {
        return;
    }
    let s = setup(true).await;
    let c = Client::over_command(command(&s)).await.unwrap();
    let c2 = c.clone();
    let in_flight = tokio::spawn(async move { c2.get("/slow").receive_text().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The server goes away: ssh exits, and the call in flight fails typed.
    drop(s.hub);
    let err = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .expect("must not hang")
        .unwrap()
        .unwrap_err();
    println!("in flight when ssh exited: {err}");
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(matches!(
        c.get("/items/1").receive_text().await.unwrap_err(),
        Error::Unavailable(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_program_is_a_clear_error() {
    let err = Client::over_command(["/nonexistent/ssh", "host"])
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("/nonexistent/ssh") && msg.contains("not started"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_client_kills_the_child() {
    if !openssh_available() {
        return;
    }
    let s = setup(true).await;
    let pidfile = s.dir.path("ssh.pid");
    // A shell that records its pid, then becomes ssh (same pid).
    let script = format!(
        "echo $$ > {}; exec {}",
        pidfile.display(),
        command(&s).join(" ")
    );
    let c = Client::over_command(["sh", "-c", &script]).await.unwrap();
    assert_eq!(
        c.get("/items/1").receive_text().await.unwrap(),
        "{\"get\":1}"
    );
    let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_owned();
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.split_whitespace().nth(2).is_none_or(|st| st != "Z"))
    };
    assert!(alive(), "ssh runs while the client is open");
    drop(c);
    let mut gone = false;
    for _ in 0..100 {
        if !alive() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "ssh (pid {pid}) must be killed when the client goes");
}

/// A target that looks like an option (`-oProxyCommand=…`, the class of git's CVE-2017-1000117)
/// reaches `ssh` as a host name after `--`: it fails to connect and runs nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_looks_like_an_option_runs_nothing() {
    if !openssh_available() {
        return;
    }
    let marker = std::env::temp_dir().join(format!("rrssh-injected-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let target = format!("-oProxyCommand=touch {}", marker.display());
    // Refused before any ssh runs.
    for t in [target.clone(), format!("ada@{target}"), String::new()] {
        let err = Client::over_ssh(&t).await.unwrap_err();
        println!("{err}");
        assert!(
            matches!(err, rrssh::transport::ConnectError::BadTarget(_)),
            "{err}"
        );
    }
    // And were it given to ssh, `--` keeps it a host name.
    let cmd = rrssh::transport::ssh_command(&target, &[]);
    let err = Client::over_command(cmd).await.unwrap_err();
    println!("{err}");
    assert!(err.to_string().starts_with("ssh exited with 255"), "{err}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!marker.exists(), "ssh ran the ProxyCommand of the target");
}
