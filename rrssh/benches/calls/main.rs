//! rrssh against bare russh, in one run, interleaved (A B A B…), median of repetitions.
//!
//! `cargo bench -p rrssh --bench calls` (about 2 minutes), or `-- --quick` (about 30 s);
//! `-- --only unary|gateway|wss|overssh|stream|bytes|connect|cluster|memory` runs one scenario
//! (`post64`, POST echo at 64 in flight for 10 s, and `wss_stream`, 64 KiB items over `wss://`
//! for 10 s, are for profiling only; `gateway`
//! needs `--features gateway`, `wss` `--features websocket` and `openssl`, `cluster` needs `--features cluster` and a nats-server 2.10+).
//! Prints one JSON line per figure, then a table with the ratios.

#![allow(missing_docs, clippy::unwrap_used)]

mod bare;
#[cfg(feature = "cluster")]
mod cluster;
mod measure;
mod memory;
mod rig;
mod ssh_tunnel;
#[cfg(feature = "websocket")]
mod web;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rrssh::client::CallExt;
use rrssh::keys::{AuthorizedKeys, HostKeyPolicy, PrivateKey, generate_ed25519};
use rrssh::routing::{get, post, stream};
use rrssh::{Client, Hub, Json, JsonStream, Router, Server};
use russh::Channel;
use russh::keys::PrivateKeyWithHashAlg;
use russh::server::{Auth, Msg, Session};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) use self::{bare::*, measure::*, memory::*, rig::*, ssh_tunnel::*};

/// Repetitions per figure; the median is reported.
const REPS: usize = 3;

struct Opts {
    quick: bool,
    /// `--only unary|gateway|overssh|stream|bytes|connect|memory`: run one scenario (for profiling).
    only: Option<String>,
}

impl Opts {
    fn runs(&self, scenario: &str) -> bool {
        self.only.as_deref().is_none_or(|o| o == scenario)
    }

    fn secs(&self) -> Duration {
        if self.quick {
            Duration::from_millis(400)
        } else {
            Duration::from_millis(1500)
        }
    }
}

fn emit(name: &str, system: &str, f: Figure, unit: &str) {
    println!(
        "{{\"figure\":\"{name}\",\"system\":\"{system}\",\"rate\":{:.0},\"unit\":\"{unit}\",\"p50_us\":{:.1},\"p99_us\":{:.1}}}",
        f.rate, f.p50_us, f.p99_us
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return child(&args[i + 1..]).await;
    }
    let opts = Opts {
        quick: std::env::args().any(|a| a == "--quick"),
        only: std::env::args().skip_while(|a| a != "--only").nth(1),
    };
    let dur = opts.secs();
    let rig = rig().await;
    let fwd = rrssh_client(&rig, &rig.forward, None).await;
    let _svc = rrssh_client(&rig, &rig.hub, Some(app())).await;
    while !rig.hub.peer("bench").is_connected() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rev = rig.hub.peer("bench");
    let body = serde_json::json!({"id": 12345, "name": "a benchmark payload", "tags": ["alpha", "beta", "gamma"],
        "nested": {"x": 1.5, "y": -2, "note": "about two hundred bytes of JSON in all, give or take"}, "ok": true});
    println!(
        "# cipher: aes256-gcm@openssh.com for every SSH figure; cores: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let mut table: Vec<(String, Figure, Figure, &'static str)> = Vec::new();
    if opts.runs("unary") {
        let tunnel = match ssh_tunnel(&rig.host, &rig.key, axum_server().await).await {
            Ok(t) => Some(t),
            Err(why) => {
                println!("# ssh -R + axum baseline skipped: {why}");
                None
            }
        };
        for conc in [1usize, 64] {
            let (mut g_f, mut g_r, mut p_f, mut b) = (vec![], vec![], vec![], vec![]);
            let (mut h_g, mut h_p) = (vec![], vec![]);
            for _ in 0..REPS {
                if let Some(t) = &tunnel {
                    h_g.push(http_load(t.port, "", conc, dur, None).await);
                    h_p.push(http_load(t.port, "", conc, dur, Some(body.clone())).await);
                }
                g_f.push(get_load(&fwd, conc, dur).await);
                b.push(bare_echo(rig.bare, &rig.key, conc, 100, dur).await);
                g_r.push(get_load(&rev, conc, dur).await);
                // Shared, not cloned per call: the figure is rrssh's, not `Value::clone`'s.
                let (c, body) = (fwd.clone(), Arc::new(body.clone()));
                p_f.push(
                    load(conc, dur, move || {
                        let (c, body) = (c.clone(), body.clone());
                        async move {
                            c.post("/echo")
                                .json(&*body)
                                .receive::<Value>()
                                .await
                                .unwrap();
                        }
                    })
                    .await,
                );
            }
            let base = median(b);
            let tag = if conc == 1 { "seq" } else { "conc64" };
            emit(&format!("echo_{tag}"), "bare-russh", base, "msg/s");
            let (g_f, g_r, p_f) = (median(g_f), median(g_r), median(p_f));
            for (name, m) in [
                ("get_forward", g_f),
                ("get_reverse", g_r),
                ("post_forward", p_f),
            ] {
                emit(&format!("{name}_{tag}"), "rrssh", m, "calls/s");
                table.push((format!("{name} {tag}"), m, base, "bare russh echo"));
            }
            if tunnel.is_some() {
                let (h_g, h_p) = (median(h_g), median(h_p));
                emit(&format!("get_{tag}"), "ssh-R+axum", h_g, "req/s");
                emit(&format!("post_{tag}"), "ssh-R+axum", h_p, "req/s");
                table.push((format!("get_reverse {tag}"), g_r, h_g, "ssh -R + axum GET"));
                table.push((
                    format!("post_forward {tag}"),
                    p_f,
                    h_p,
                    "ssh -R + axum POST",
                ));
            }
        }
    }
    if opts.only.as_deref() == Some("post64") {
        // For profiling only: POST echo with 64 in flight, alone, for 10 s.
        let (c, body) = (fwd.clone(), body.clone());
        let f = load(64, Duration::from_secs(10), move || {
            let (c, body) = (c.clone(), body.clone());
            async move {
                c.post("/echo")
                    .json(&body)
                    .receive::<Value>()
                    .await
                    .unwrap();
            }
        })
        .await;
        emit("post_forward_conc64", "rrssh", f, "calls/s");
    }
    #[cfg(feature = "gateway")]
    if opts.runs("gateway") {
        // HTTP clients → the hub's HTTP gateway → SSH → the reverse service, against HTTP
        // clients → sshd's `ssh -R` port → axum: both put a service behind NAT on HTTP.
        match ssh_tunnel(&rig.host, &rig.key, axum_server().await).await {
            Ok(tunnel) => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let gw_port = listener.local_addr().unwrap().port();
                let gw = rrssh::gateway::Gateway::new(rig.hub.registry())
                    .anonymous(rrssh::auth::Grants::parse("call:*").unwrap());
                tokio::spawn(gw.serve(listener));
                for conc in [1usize, 64] {
                    let (mut g, mut h, mut gp, mut hp) = (vec![], vec![], vec![], vec![]);
                    for _ in 0..REPS {
                        g.push(http_load(gw_port, "/peers/bench", conc, dur, None).await);
                        h.push(http_load(tunnel.port, "", conc, dur, None).await);
                        let b = Some(body.clone());
                        gp.push(http_load(gw_port, "/peers/bench", conc, dur, b.clone()).await);
                        hp.push(http_load(tunnel.port, "", conc, dur, b).await);
                    }
                    let (g, h, gp, hp) = (median(g), median(h), median(gp), median(hp));
                    let tag = if conc == 1 { "seq" } else { "conc64" };
                    emit(&format!("gateway_get_{tag}"), "rrssh", g, "req/s");
                    emit(&format!("gateway_post_{tag}"), "rrssh", gp, "req/s");
                    table.push((format!("gateway GET {tag}"), g, h, "ssh -R + axum GET"));
                    table.push((format!("gateway POST {tag}"), gp, hp, "ssh -R + axum POST"));
                }
            }
            Err(why) => println!("# gateway vs ssh -R skipped: {why}"),
        }
    }
    if opts.runs("overssh") {
        // rrssh over a spawned OpenSSH `ssh` (Client::over_command) vs rrssh's own SSH client,
        // to the same server: what the convenience costs.
        match over_ssh_client(&rig).await {
            Ok((via_ssh, _dir)) => {
                for conc in [1usize, 64] {
                    let (mut o, mut d) = (vec![], vec![]);
                    for _ in 0..REPS {
                        o.push(get_load(&via_ssh, conc, dur).await);
                        d.push(get_load(&fwd, conc, dur).await);
                    }
                    let (o, d) = (median(o), median(d));
                    let tag = if conc == 1 { "seq" } else { "conc64" };
                    emit(&format!("get_over_ssh_{tag}"), "rrssh", o, "calls/s");
                    table.push((
                        format!("get over spawned ssh {tag}"),
                        o,
                        d,
                        "rrssh's own client",
                    ));
                }
                via_ssh.close().await;
            }
            Err(why) => println!("# over spawned ssh skipped: {why}"),
        }
    }
    #[cfg(feature = "websocket")]
    if opts.only.as_deref() == Some("wss_stream") {
        // For profiling only: 64 KiB items over wss://, alone, for about 10 s.
        web::stream_alone(&rig).await;
    }
    #[cfg(feature = "websocket")]
    if opts.runs("wss") {
        web::compare(&rig, &fwd, dur, &mut table).await;
    }
    if opts.runs("stream") {
        // STREAM of 1 KiB and 64 KiB items, 1 and 16 streams at once, vs bare bulk throughput
        // on as many channels.
        let scale = if opts.quick { 1 } else { 3 };
        for (size, streams, total) in [
            (1024usize, 1usize, 24 << 20),
            (64 * 1024, 1, 48 << 20),
            (1024, 16, 24 << 20),
            (64 * 1024, 16, 48 << 20),
        ] {
            let total = total * scale;
            let per_stream = total / streams / size;
            let (mut s, mut bb) = (vec![], vec![]);
            for _ in 0..REPS {
                s.push(rrssh_streams(&fwd, size, per_stream, streams).await);
                bb.push(bare_bulk(rig.bare, &rig.key, per_stream * size, streams).await);
            }
            let (s, bb) = (median(s), median(bb));
            let name = format!("stream_{}k_x{streams}", size / 1024);
            emit(&name, "rrssh", s, "B/s");
            emit(&format!("bulk_x{streams}"), "bare-russh", bb, "B/s");
            println!(
                "{{\"figure\":\"{name}_items\",\"system\":\"rrssh\",\"rate\":{:.0},\"unit\":\"items/s\"}}",
                s.rate / size as f64
            );
            let mb = |f: Figure| Figure {
                rate: f.rate / 1e6,
                ..f
            };
            table.push((
                format!("stream {} KiB x{streams} (MB/s)", size / 1024),
                mb(s),
                mb(bb),
                "bare russh bulk",
            ));
        }
    }
    if opts.runs("bytes") {
        // Raw byte streams (ByteStream: a file, a backup) of 64 KiB chunks, 1 and 16 at once,
        // vs bare bulk throughput on as many channels.
        let scale = if opts.quick { 1 } else { 3 };
        for streams in [1usize, 16] {
            let size = 64 * 1024;
            let per_stream = (48usize << 20) * scale / streams / size;
            let (mut s, mut bb) = (vec![], vec![]);
            for _ in 0..REPS {
                s.push(rrssh_bytes(&fwd, size, per_stream, streams).await);
                bb.push(bare_bulk(rig.bare, &rig.key, per_stream * size, streams).await);
            }
            let (s, bb) = (median(s), median(bb));
            let name = format!("bytes_64k_x{streams}");
            emit(&name, "rrssh", s, "B/s");
            emit(&format!("bulk_x{streams}"), "bare-russh", bb, "B/s");
            let mb = |f: Figure| Figure {
                rate: f.rate / 1e6,
                ..f
            };
            table.push((
                format!("byte stream 64 KiB x{streams} (MB/s)"),
                mb(s),
                mb(bb),
                "bare russh bulk",
            ));
        }
    }
    if opts.runs("connect") {
        // Connection setup: connect + auth + first call vs connect + auth.
        let n = if opts.quick { 20 } else { 60 };
        let (mut cs, mut cb, mut ce) = (vec![], vec![], vec![]);
        for _ in 0..REPS {
            let mut lat = vec![];
            let t = Instant::now();
            for _ in 0..n {
                let t0 = Instant::now();
                let c = rrssh_client(&rig, &rig.forward, None).await;
                c.get("/hello").receive::<Value>().await.unwrap();
                lat.push(t0.elapsed());
                c.close().await;
            }
            cs.push(summarize(lat, t.elapsed()));
            let mut lat = vec![];
            let t = Instant::now();
            for _ in 0..n {
                let t0 = Instant::now();
                let h = bare_connect(rig.bare, &rig.key).await;
                lat.push(t0.elapsed());
                drop(h);
            }
            cb.push(summarize(lat, t.elapsed()));
            // The same round trips as rrssh's first call: a channel, then one echo on it.
            let mut lat = vec![];
            let t = Instant::now();
            for _ in 0..n {
                let t0 = Instant::now();
                let h = bare_connect(rig.bare, &rig.key).await;
                let ch = h.channel_open_session().await.unwrap();
                let mut s = ch.into_stream();
                s.write_all(&[0, 0, 0, 2, b'h', b'i']).await.unwrap();
                let mut back = [0u8; 6];
                s.read_exact(&mut back).await.unwrap();
                lat.push(t0.elapsed());
                drop((s, h));
            }
            ce.push(summarize(lat, t.elapsed()));
        }
        let (cs, cb, ce) = (median(cs), median(cb), median(ce));
        emit("connect_auth_first_call", "rrssh", cs, "conn/s");
        emit("connect_auth", "bare-russh", cb, "conn/s");
        emit("connect_auth_channel_echo", "bare-russh", ce, "conn/s");
        table.push((
            "connect+auth(+first call)".into(),
            cs,
            cb,
            "bare russh connect+auth",
        ));
        table.push((
            "connect+auth+first call".into(),
            cs,
            ce,
            "bare: +channel, one echo",
        ));
    }
    #[cfg(feature = "cluster")]
    if opts.runs("cluster") {
        cluster::cluster_figures(&rig, dur, &mut table).await;
    }
    if opts.runs("memory") {
        // Idle memory: server RSS growth per connection, measured in child processes.
        let n = if opts.quick { 200 } else { 1000 };
        let dir = std::env::temp_dir().join(format!("rrssh-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        rrssh::keys::write_key_pair(&rig.host, dir.join("host")).unwrap();
        rrssh::keys::write_key_pair(&rig.key, dir.join("client")).unwrap();
        let bare = idle_kib(&dir, "bare", n).await;
        let hub = idle_kib(&dir, "hub", n).await;
        let fwd = idle_kib(&dir, "forward", n).await;
        // A fleet on one hub: 10,000 services (the full run only; it needs 10,000 descriptors
        // in each process).
        if !opts.quick {
            let n = 10_000;
            let (kib, per_s, spread) = many_services(&dir, n, dur).await;
            println!(
                "{{\"figure\":\"services_on_one_hub\",\"system\":\"rrssh\",\"services\":{n},\"kib_per_service\":{kib:.1},\"registrations_per_s\":{per_s:.0}}}"
            );
            println!(
                "# {n} services on one hub: {kib:.1} KiB each, {per_s:.0} registrations/s (one at a time)"
            );
            println!(
                "# calls through the hub spread over 1,000 of them, 64 in flight: {:.0}/s, p50 {:.0} µs, p99 {:.0} µs",
                spread.rate, spread.p50_us, spread.p99_us
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
        for (name, v) in [("idle_reverse_service", hub), ("idle_forward_client", fwd)] {
            println!(
                "{{\"figure\":\"{name}\",\"system\":\"rrssh\",\"kib_per_conn\":{v:.1},\"connections\":{n}}}"
            );
            let kib = |rate| Figure {
                rate,
                ..Default::default()
            };
            table.push((
                format!("{name} (KiB, lower is better)"),
                kib(v),
                kib(bare),
                "bare russh idle connection + channel",
            ));
        }
        println!(
            "{{\"figure\":\"idle_connection_with_channel\",\"system\":\"bare-russh\",\"kib_per_conn\":{bare:.1},\"connections\":{n}}}"
        );
    }

    println!();
    println!(
        "{:<30} {:>12} {:>10} {:>10} | {:>12} {:>10} | {:>7} {:>9}",
        "figure", "rrssh /s", "p50 µs", "p99 µs", "baseline /s", "p50 µs", "ratio", "p50 ratio"
    );
    for (name, a, b, base) in &table {
        println!(
            "{:<30} {:>12.0} {:>10.1} {:>10.1} | {:>12.0} {:>10.1} | {:>6.2}x {:>8.2}x  ({base})",
            name,
            a.rate,
            a.p50_us,
            a.p99_us,
            b.rate,
            b.p50_us,
            a.rate / b.rate,
            if b.p50_us > 0.0 {
                a.p50_us / b.p50_us
            } else {
                0.0
            }
        );
    }
}
