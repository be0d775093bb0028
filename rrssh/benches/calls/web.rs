//! rrssh over `wss://` (SSH in a WebSocket in TLS, to a web listener) against rrssh over raw
//! SSH to the same server, interleaved: calls, JSON streams and connecting.

use std::path::Path;
use std::time::{Duration, Instant};

use rrssh::Client;
use rrssh::keys::HostKeyPolicy;
use rrssh::tls::{ServerCertificate, TrustedRoots};
use rrssh::websocket::WebListener;

use super::{Figure, REPS, Rig, emit, get_load, median, rrssh_streams};

/// A certificate for 127.0.0.1 signed by a private CA (`ca.pem`), made with `openssl` in `dir`.
fn certificate(dir: &Path) -> Result<(), String> {
    rrssh_test_support::Pki::new(dir, "ca")?.issue(
        "cert.pem",
        "key.pem",
        "bench",
        "subjectAltName=IP:127.0.0.1",
    )
}

/// A client of the rig's forward server over `wss://`, and how to make more.
pub(crate) struct Wss {
    pub(crate) url: String,
    /// The same server over `ws://` (a listener without TLS): what TLS costs, told apart.
    pub(crate) ws_url: String,
    pub(crate) roots: TrustedRoots,
    _dir: tempdir::Dir,
}

mod tempdir {
    pub(crate) struct Dir(pub(crate) std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub(crate) async fn wss(rig: &Rig) -> Result<Wss, String> {
    let dir = std::env::temp_dir().join(format!("rrssh-bench-wss-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let dir = tempdir::Dir(dir);
    certificate(&dir.0)?;
    let cert = ServerCertificate::load(dir.0.join("cert.pem"), dir.0.join("key.pem"))
        .map_err(|e| e.to_string())?;
    let web = WebListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?
        .tls(cert)
        .serve(&rig.forward)
        .map_err(|e| e.to_string())?;
    let plain = WebListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?
        .serve(&rig.forward)
        .map_err(|e| e.to_string())?;
    let roots = TrustedRoots::from_pem_file(dir.0.join("ca.pem")).map_err(|e| e.to_string())?;
    Ok(Wss {
        url: format!("wss://127.0.0.1:{}", web.port()),
        ws_url: format!("ws://127.0.0.1:{}", plain.port()),
        roots,
        _dir: dir,
    })
}

async fn connect(rig: &Rig, addr: &str, roots: Option<&TrustedRoots>) -> Client {
    let mut b = Client::builder(addr)
        .user("ada")
        .identity(rig.key.clone())
        .host_keys(HostKeyPolicy::Pinned(rig.host.public_key().clone()));
    if let Some(r) = roots {
        b = b.tls_roots(r.clone());
    }
    b.connect().await.unwrap()
}

/// Connections made one after another for `dur`, each with one call: connects per second.
async fn connects(rig: &Rig, addr: &str, roots: Option<&TrustedRoots>, dur: Duration) -> Figure {
    let start = Instant::now();
    let mut times = Vec::new();
    while start.elapsed() < dur || times.len() < 3 {
        let t = Instant::now();
        let c = connect(rig, addr, roots).await;
        let _: String = rrssh::client::CallExt::get(&c, "/hello")
            .receive_text()
            .await
            .unwrap();
        c.close().await;
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    Figure {
        rate: times.len() as f64 / start.elapsed().as_secs_f64(),
        p50_us: times[times.len() / 2],
        p99_us: times[times.len() * 99 / 100],
    }
}

/// The rows of the table: rrssh over `wss://` against rrssh over raw SSH.
pub(crate) async fn compare(
    rig: &Rig,
    raw: &Client,
    dur: Duration,
    table: &mut Vec<(String, Figure, Figure, &'static str)>,
) {
    let w = match wss(rig).await {
        Ok(w) => w,
        Err(why) => return println!("# wss:// skipped: {why}"),
    };
    let over = connect(rig, &w.url, Some(&w.roots)).await;
    let raw_addr = rig.forward.local_addr().to_string();
    for conc in [1usize, 64] {
        let (mut a, mut b) = (vec![], vec![]);
        for _ in 0..REPS {
            a.push(get_load(&over, conc, dur).await);
            b.push(get_load(raw, conc, dur).await);
        }
        let (a, b) = (median(a), median(b));
        let tag = if conc == 1 { "seq" } else { "conc64" };
        emit(&format!("wss_get_{tag}"), "rrssh", a, "calls/s");
        table.push((format!("wss:// GET {tag}"), a, b, "rrssh over raw SSH"));
    }
    let (mut a, mut b) = (vec![], vec![]);
    for _ in 0..REPS {
        a.push(rrssh_streams(&over, 64 * 1024, 256, 1).await);
        b.push(rrssh_streams(raw, 64 * 1024, 256, 1).await);
    }
    let mb = |f: Figure| Figure {
        rate: f.rate / 1e6,
        ..f
    };
    let (a, b) = (mb(median(a)), mb(median(b)));
    emit("wss_stream_64k_x1", "rrssh", a, "MB/s");
    table.push((
        "wss:// stream 64 KiB x1 (MB/s)".into(),
        a,
        b,
        "rrssh over raw SSH",
    ));
    // Without TLS: the WebSocket layer's own share.
    let plain = connect(rig, &w.ws_url, None).await;
    let (mut a, mut b) = (vec![], vec![]);
    for _ in 0..REPS {
        a.push(rrssh_streams(&plain, 64 * 1024, 256, 1).await);
        b.push(rrssh_streams(raw, 64 * 1024, 256, 1).await);
    }
    let (a, b) = (mb(median(a)), mb(median(b)));
    emit("ws_stream_64k_x1", "rrssh", a, "MB/s");
    table.push((
        "ws:// stream 64 KiB x1 (MB/s)".into(),
        a,
        b,
        "rrssh over raw SSH",
    ));
    drop(plain);
    let (mut a, mut b) = (vec![], vec![]);
    for _ in 0..REPS {
        a.push(connects(rig, &w.url, Some(&w.roots), dur).await);
        b.push(connects(rig, &raw_addr, None, dur).await);
    }
    let (a, b) = (median(a), median(b));
    emit("wss_connect", "rrssh", a, "connects/s");
    table.push(("wss:// connect + call".into(), a, b, "rrssh over raw SSH"));
    drop(over);
}

/// For profiling only: streams of 64 KiB items over `wss://`, one after another, for 10 s.
pub(crate) async fn stream_alone(rig: &Rig) {
    let w = match wss(rig).await {
        Ok(w) => w,
        Err(why) => return println!("# wss:// skipped: {why}"),
    };
    let over = connect(rig, &w.url, Some(&w.roots)).await;
    let start = Instant::now();
    let mut figures = Vec::new();
    while start.elapsed() < Duration::from_secs(10) {
        figures.push(rrssh_streams(&over, 64 * 1024, 256, 1).await);
    }
    let f = median(figures);
    emit(
        "wss_stream_64k_x1",
        "rrssh",
        Figure {
            rate: f.rate / 1e6,
            ..f
        },
        "MB/s",
    );
}
