//! Byte streams over SSH: 1 GiB up and back down with a checksum, a stalled reader bounded by
//! the window, and streams cut short ending in an error.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt as _;
use rrssh::{ByteStream, Router};

use super::{Keys, client, server};

const CHUNK: usize = 64 * 1024;

/// Chunk `i` of the test data: different for every index, cheap to make.
fn chunk(i: u64) -> Bytes {
    let mut v = vec![0u8; CHUNK];
    for (j, w) in v.chunks_exact_mut(8).enumerate() {
        w.copy_from_slice(&(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ j as u64).to_le_bytes());
    }
    Bytes::from(v)
}

/// An order-sensitive checksum over 8-byte words (the data is a whole number of words).
#[derive(Default)]
struct Sum {
    acc: u64,
    carry: Vec<u8>,
    len: u64,
}

impl Sum {
    fn add(&mut self, b: &[u8]) {
        self.len += b.len() as u64;
        let mut data = std::mem::take(&mut self.carry);
        data.extend_from_slice(b);
        let words = data.len() / 8 * 8;
        for w in data[..words].chunks_exact(8) {
            let x = u64::from_le_bytes(w.try_into().unwrap());
            self.acc = self.acc.rotate_left(5) ^ x;
        }
        self.carry = data[words..].to_vec();
    }
}

/// Uploads are echoed back as they arrive; the other routes fail or never end.
#[rrssh::post("/echo")]
async fn echo(body: ByteStream) -> ByteStream {
    body
}

fn router(produced: Arc<AtomicU64>) -> Router {
    Router::new()
        .mount(rrssh::routes![echo])
        .route(
            "/endless",
            rrssh::routing::get(move || {
                let produced = produced.clone();
                async move {
                    ByteStream::new(futures_util::stream::iter(0u64..).map(move |i| {
                        produced.fetch_add(CHUNK as u64, Ordering::Relaxed);
                        Ok::<_, std::io::Error>(chunk(i))
                    }))
                }
            }),
        )
        .route(
            "/fails",
            rrssh::routing::get(|| async {
                ByteStream::new(futures_util::stream::iter(0u64..4).map(|i| {
                    if i < 3 {
                        Ok(chunk(i))
                    } else {
                        Err(std::io::Error::other("disk on fire"))
                    }
                }))
            }),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_goes_up_and_comes_back_intact() {
    const TOTAL: u64 = 1 << 30;
    let keys = Keys::new();
    let hub = server(&keys, Some(router(Arc::default()))).await;
    let c = client(&keys, &hub).connect().await.unwrap();
    let chunks = TOTAL / CHUNK as u64;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let upload = ByteStream::new(
        futures_util::stream::iter(0..chunks).map(move |i| Ok::<_, std::io::Error>(chunk(i))),
    );
    // The checksum of what was sent, computed apart from the transfer.
    std::thread::spawn(move || {
        let mut s = Sum::default();
        for i in 0..chunks {
            s.add(&chunk(i));
        }
        let _ = tx.send((s.len, s.acc));
    });
    let started = Instant::now();
    let mut back = echo::call(&c, upload).await.unwrap();
    let mut got = Sum::default();
    while let Some(b) = back.next().await {
        got.add(&b.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    let sent = rx.await.unwrap();
    println!(
        "figure: 1 GiB up and back down in {secs:.1} s ({:.0} MB/s each way, debug build)",
        TOTAL as f64 / secs / 1e6
    );
    assert_eq!((got.len, got.acc), sent, "the bytes that came back differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_holds_the_producer_within_the_window() {
    let keys = Keys::new();
    let produced = Arc::new(AtomicU64::new(0));
    let hub = server(&keys, Some(router(produced.clone()))).await;
    let c = client(&keys, &hub).connect().await.unwrap();
    use rrssh::client::CallExt as _;
    let res = c.get("/endless").send().await.unwrap();
    let mut s = ByteStream::from_body(res.into_body());
    let _first = s.next().await.unwrap().unwrap();
    // Stop reading: the producer stops once the windows (1 MiB for the call) are full.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = produced.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = produced.load(Ordering::Relaxed);
    println!(
        "figure: a stalled reader: {} KiB produced, then still {} KiB",
        held / 1024,
        later / 1024
    );
    assert_eq!(held, later, "the producer must be suspended");
    assert!(
        held <= 4 << 20,
        "{held} bytes produced for a reader that stopped"
    );
    // Reading resumes where it stopped.
    let next = s.next().await.unwrap().unwrap();
    assert_eq!(next.len(), CHUNK);
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_short_ends_in_an_error() {
    use tokio::io::AsyncReadExt as _;
    let keys = Keys::new();
    let hub = server(&keys, Some(router(Arc::default()))).await;
    let c = client(&keys, &hub).connect().await.unwrap();
    use rrssh::client::CallExt as _;
    // The producer fails after three chunks: three chunks, then an error, never a clean end.
    let res = c.get("/fails").send().await.unwrap();
    let mut s = ByteStream::from_body(res.into_body());
    let mut ok = 0;
    let end = loop {
        match s.next().await {
            Some(Ok(b)) => ok += b.len(),
            Some(Err(e)) => break Some(e),
            None => break None,
        }
    };
    assert_eq!(ok, 3 * CHUNK);
    let e = end.expect("a failed producer must not look like a complete stream");
    println!("failed producer: {e}");
    // The same through AsyncRead: an error, not an early EOF.
    let res = c.get("/fails").send().await.unwrap();
    let mut r = ByteStream::from_body(res.into_body()).into_async_read();
    let mut all = Vec::new();
    assert!(r.read_to_end(&mut all).await.is_err());
    // The connection lost mid-stream: an error too.
    let res = c.get("/endless").send().await.unwrap();
    let mut s = ByteStream::from_body(res.into_body());
    let _ = s.next().await.unwrap().unwrap();
    hub.shutdown(Duration::from_millis(50)).await;
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match s.next().await {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Some(e),
                None => return None,
            }
        }
    })
    .await
    .unwrap();
    assert!(
        end.is_some(),
        "a lost connection must end the stream with an error"
    );
}
