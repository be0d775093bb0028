//! Cancellation, deadlines, a stalled reader and panicking handlers over SSH.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use rrssh::client::CallExt;
use rrssh::routing::{get, stream};
use rrssh::{JsonStream, Router, StatusCode};

use super::{Keys, client, eventually, server, server_builder};

#[tokio::test]
async fn stalled_stream_reader_does_not_block_other_calls() {
    let keys = Keys::new();
    let produced = Arc::new(AtomicUsize::new(0));
    let p = produced.clone();
    let endless = move || {
        let p = p.clone();
        async move {
            let big = "x".repeat(1000);
            JsonStream::new(futures_util::stream::iter(0..).map(move |i: u64| {
                p.fetch_add(1, Ordering::Relaxed);
                (i, big.clone())
            }))
        }
    };
    let router: Router = Router::new()
        .route("/endless", stream(endless))
        .route("/quick", get(|| async { "quick" }));
    let hub = server(&keys, Some(router)).await;
    let c = client(&keys, &hub).connect().await.unwrap();
    let mut s = c.stream("/endless").items::<(u64, String)>().await.unwrap();
    let _first = s.next().await.unwrap().unwrap();
    // Stop reading. Other calls on the same connection keep completing.
    for _ in 0..200 {
        assert_eq!(c.get("/quick").receive_text().await.unwrap(), "quick");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stalled_at = produced.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = produced.load(Ordering::Relaxed);
    // The producer is not polled while the window is full: about 1 MiB of ~1 KiB items.
    assert_eq!(
        stalled_at, later,
        "the producer must stop while the reader is stalled"
    );
    assert!(
        later < 1_500,
        "at most a window of items is produced ahead: {later}"
    );
    println!("stalled stream: {later} items produced (window 1 MiB, ~1 KiB each)");
    drop(s);
}

#[tokio::test]
async fn dropping_the_call_cancels_the_handler() {
    let keys = Keys::new();
    let dropped = Arc::new(AtomicUsize::new(0));
    struct Guard(Arc<AtomicUsize>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let d = dropped.clone();
    let hang = move || {
        let g = Guard(d.clone());
        async move {
            let _g = g;
            std::future::pending::<()>().await;
        }
    };
    let hub = server(&keys, Some(Router::new().route("/hang", get(hang)))).await;
    let c = client(&keys, &hub).connect().await.unwrap();
    let _ = tokio::time::timeout(Duration::from_millis(100), c.get("/hang").send()).await;
    assert!(
        eventually(Duration::from_secs(5), || dropped.load(Ordering::SeqCst)
            == 1)
        .await,
        "handler not dropped"
    );
    assert!(
        eventually(Duration::from_secs(5), || c.connection().calls_in_flight()
            == 0)
        .await
    );
}

#[tokio::test]
async fn deadline_answers_504() {
    let keys = Keys::new();
    let slow = || async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        "late"
    };
    let hub = server(&keys, Some(Router::new().route("/slow", get(slow)))).await;
    let c = client(&keys, &hub).connect().await.unwrap();
    let started = std::time::Instant::now();
    // The connection's one timer for the call resets it with 504 (PROTOCOL.md §3, Deadlines):
    // never a RESPONSE. The caller's own timer, a little later, may win under load.
    match c
        .get("/slow")
        .timeout(Duration::from_millis(100))
        .send()
        .await
    {
        Err(rrssh::client::Error::Status { status, body }) => {
            assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
            assert!(body.message.contains("deadline passed"), "{}", body.message);
        }
        Err(rrssh::client::Error::Timeout) => {}
        Ok(res) => panic!("a RESPONSE {} instead of RESET 504", res.status()),
        Err(e) => panic!("expected RESET 504, got {e}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A panicking handler or stream fails only its own call, with a 500; the connection and other
/// calls carry on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_handlers_answer_500_and_the_connection_survives() {
    use rrssh::client::Error;
    let router: Router = Router::new()
        .route(
            "/boom",
            get(|| async {
                if true {
                    panic!("handler bug");
                }
                "unreachable"
            }),
        )
        .route(
            "/boom-stream",
            stream(|| async {
                JsonStream::new(futures_util::stream::iter(0..10).map(|i: u32| {
                    assert!(i < 3, "stream bug");
                    i
                }))
            }),
        )
        .route("/quick", get(|| async { "quick" }));
    let keys = Keys::new();
    let hub = server(&keys, Some(router)).await;
    let c = client(&keys, &hub).connect().await.unwrap();
    assert_eq!(c.get("/quick").receive_text().await.unwrap(), "quick");
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let tasks_before = tasks();
    let calls = (0..1000).map(|_| {
        let c = c.clone();
        async move { c.get("/boom").receive_text().await }
    });
    for r in futures_util::future::join_all(calls).await {
        match r {
            Err(Error::Status { status, body }) => {
                assert_eq!(status, 500);
                assert!(!body.message.contains("handler bug"), "no panic text leaks");
            }
            other => panic!("expected 500, got {other:?}"),
        }
    }
    // A stream that panics after some items ends with an error, never a clean end.
    let mut s = c.stream("/boom-stream").items::<u32>().await.unwrap();
    let mut got = Vec::new();
    let end = loop {
        match s.next().await {
            Some(Ok(i)) => got.push(i),
            Some(Err(e)) => break Some(e),
            None => break None,
        }
    };
    assert!(end.is_some(), "a panicked stream must not end cleanly");
    // Items batched with the one that panicked may be lost; none is invented or reordered.
    assert!(
        got.len() <= 3 && got.iter().copied().eq(0..got.len() as u32),
        "{got:?}"
    );
    assert_eq!(c.get("/quick").receive_text().await.unwrap(), "quick");
    drop(s);
    // Nothing leaks: the runtime's tasks return to where they were (file descriptors are
    // process-wide and shared with tests running in parallel, so they are not counted here).
    assert!(
        eventually(Duration::from_secs(5), || tasks() <= tasks_before).await,
        "tasks: {} before, {} after",
        tasks_before,
        tasks()
    );
}

/// A client that dribbles its handshake (one byte at a time) is cut at the auth timeout.
#[tokio::test]
async fn slow_handshake_is_cut_at_the_auth_timeout() {
    use tokio::io::AsyncWriteExt;
    let keys = Keys::new();
    let hub = server_builder(&keys)
        .auth_timeout(Duration::from_millis(500))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let mut tcp = tokio::net::TcpStream::connect(hub.local_addr())
        .await
        .unwrap();
    let start = std::time::Instant::now();
    let writer = async {
        for b in b"SSH-2.0-slowloris_client_that_never_finishes"
            .iter()
            .cycle()
        {
            tcp.write_all(&[*b]).await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok::<(), std::io::Error>(())
    };
    let closed = tokio::time::timeout(Duration::from_secs(10), writer).await;
    let cut = start.elapsed();
    println!(
        "slow handshake cut after {} ms (auth timeout 500 ms)",
        cut.as_millis()
    );
    assert!(closed.is_ok(), "the server must close the connection");
    assert!(cut < Duration::from_secs(3), "{cut:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expose_errors_puts_the_panic_into_the_500_only_when_asked() {
    use rrssh::client::Error;
    let boom = || {
        Router::new().route(
            "/boom",
            get(|| async {
                if true {
                    panic!("handler bug #{}", 7);
                }
                "unreachable"
            }),
        )
    };
    let keys = Keys::new();
    for (exposed, router) in [(true, boom().expose_errors(true)), (false, boom())] {
        let hub = server(&keys, Some(router)).await;
        let c = client(&keys, &hub).connect().await.unwrap();
        let err = c
            .get("/boom")
            .receive::<serde_json::Value>()
            .await
            .unwrap_err();
        let Error::Status { status, body } = err else {
            panic!("expected a 500, got {err}");
        };
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        if exposed {
            let detail = body.detail.clone().expect("a detail with the panic");
            assert_eq!(detail["panic"], "handler bug #7", "{detail}");
            let location = detail["location"].as_str().unwrap();
            assert!(location.contains("faults.rs:"), "{location}");
            assert!(
                detail["backtrace"]
                    .as_array()
                    .is_some_and(|b| !b.is_empty())
            );
        } else {
            assert!(body.detail.is_none(), "{:?}", body.detail);
            assert!(!format!("{body:?}").contains("handler bug"));
        }
    }
}
