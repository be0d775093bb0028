//! Reconnection and dead peers: services come back after the hub restarts, black holes are
//! detected by keepalives, cut connections fail calls and streams with typed errors.

use std::time::{Duration, Instant};

use rrssh::Router;
use rrssh::client::{CallExt, Error};
use rrssh::routing::get;
use rrssh::transport::{Backoff, ConnectionEvent};

use super::proxy::Proxy;
use super::{Keys, client, client_to, eventually, server, server_builder};

fn named(name: &'static str) -> Router {
    Router::new().route("/name", get(move || async move { name }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_return_after_the_hub_restarts_on_the_same_port() {
    const N: usize = 100;
    let keys = Keys::new();
    let hub = server(&keys, None).await;
    let addr = hub.local_addr();
    let backoff = Backoff::default()
        .initial(Duration::from_millis(50))
        .max(Duration::from_millis(500));
    let services: Vec<_> = (0..N)
        .map(|i| {
            let name: &'static str = Box::leak(format!("svc{i}").into_boxed_str());
            client(&keys, &hub)
                .serve(named(name))
                .service_name(name)
                .backoff(backoff)
                .connect_persistent()
        })
        .collect();
    assert!(
        eventually(Duration::from_secs(10), || hub.peers().len() == N).await,
        "all services register first"
    );
    let mut events = services[0].events();

    // Kill the hub abruptly; every service notices and backs off.
    drop(hub);
    assert!(
        eventually(Duration::from_secs(5), || services
            .iter()
            .all(|s| !s.is_connected()))
        .await,
        "every service sees the connection drop"
    );
    let lost = loop {
        match events.recv().await.unwrap() {
            ConnectionEvent::Disconnected { reason } => break reason,
            _ => continue,
        }
    };
    println!("service 0 saw: {lost}");
    // A call without a deadline fails at once with a typed error during the outage.
    assert!(matches!(
        services[0].get("/x").send().await,
        Err(Error::Unavailable(_))
    ));

    // Restart on the same port: all N are back within 5 s.
    let restarted = Instant::now();
    let hub = server_builder(&keys)
        .bind(addr)
        .await
        .expect("rebind the same port");
    assert!(
        eventually(Duration::from_secs(5), || hub.peers().len() == N).await,
        "only {} of {N} services back within 5 s",
        hub.peers().len()
    );
    println!(
        "{N} services back {} ms after the restart",
        restarted.elapsed().as_millis()
    );
    for i in (0..N).step_by(7) {
        let name = format!("svc{i}");
        assert_eq!(
            hub.peer(&name).get("/name").receive_text().await.unwrap(),
            name
        );
    }
    // And the services call the hub again (a 404: the hub serves nothing, but it answers).
    let err = services[3]
        .get("/nothing")
        .receive_text()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Status { status, .. } if status == 404),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_call_with_a_deadline_waits_for_the_connection() {
    let keys = Keys::new();
    let hub = server(&keys, Some(named("hub"))).await;
    let addr = hub.local_addr();
    let c = client(&keys, &hub)
        .backoff(Backoff::default().initial(Duration::from_millis(20)))
        .connect_persistent();
    c.connected().await;
    drop(hub);
    assert!(eventually(Duration::from_secs(5), || !c.is_connected()).await);

    // Nothing listens: a call with a 300 ms budget times out, typed.
    let t = Instant::now();
    let err = c
        .get("/name")
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(3));

    // The hub comes back while a call waits: it completes.
    let c2 = c.clone();
    let waiting = tokio::spawn(async move {
        c2.get("/name")
            .timeout(Duration::from_secs(10))
            .receive_text()
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _hub = server_builder(&keys)
        .router(named("hub again"))
        .bind(addr)
        .await
        .unwrap();
    c.reconnect_now();
    assert_eq!(waiting.await.unwrap().unwrap(), "hub again");
}

/// A black-holed connection is declared dead within keepalive interval × misses; the call in
/// flight fails `Unavailable`, and the client reconnects once the path heals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_hole_is_detected_by_keepalives_and_recovered() {
    let keys = Keys::new();
    let slow: Router = named("hub").route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        }),
    );
    let hub = server_builder(&keys)
        .router(slow)
        .keepalive(Duration::from_millis(200), 3)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let proxy = Proxy::start(hub.local_addr()).await;
    let c = client_to(&keys, proxy.addr())
        .keepalive(Duration::from_millis(200), 3)
        .backoff(
            Backoff::default()
                .initial(Duration::from_millis(50))
                .max(Duration::from_millis(200)),
        )
        .connect_persistent();
    c.connected().await;
    let c2 = c.clone();
    let in_flight = tokio::spawn(async move { c2.get("/slow").receive_text().await });
    tokio::time::sleep(Duration::from_millis(100)).await;

    let cut = Instant::now();
    proxy.black_hole(true);
    let err = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .expect("the call in flight must not hang")
        .unwrap()
        .unwrap_err();
    let detected = cut.elapsed();
    println!(
        "black hole detected after {} ms (keepalive 200 ms x 3)",
        detected.as_millis()
    );
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    // Interval × misses plus one interval of slack for the timer's phase, and scheduling.
    assert!(
        detected < Duration::from_millis(200 * 4 + 1500),
        "{detected:?}"
    );

    proxy.black_hole(false);
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match c.get("/name").receive_text().await {
                    Ok(t) => break t,
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        })
        .await
        .expect("recovers after the path heals"),
        "hub"
    );
}

/// A connection cut in the middle of a STREAM gives the reader an error, never a clean end.
#[tokio::test]
async fn reset_in_the_middle_of_a_stream_is_an_error() {
    use futures_util::StreamExt;
    let keys = Keys::new();
    let ticks: Router = Router::new().route(
        "/ticks",
        rrssh::routing::stream(|| async {
            rrssh::JsonStream::new(futures_util::stream::iter(0u64..).then(|i| async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                i
            }))
        }),
    );
    let hub = server(&keys, Some(ticks)).await;
    let proxy = Proxy::start(hub.local_addr()).await;
    let c = client_to(&keys, proxy.addr()).connect().await.unwrap();
    let mut s = c.stream("/ticks").items::<u64>().await.unwrap();
    for want in 0..10 {
        assert_eq!(s.next().await.unwrap().unwrap(), want);
    }
    proxy.reset_all();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match s.next().await {
                Some(Ok(_)) => continue,
                Some(Err(e)) => break Some(e),
                None => break None,
            }
        }
    })
    .await
    .expect("the reader must not hang");
    let e = end.expect("a cut stream must end with an error, not a clean end");
    println!("stream cut: {e}");
    assert!(
        matches!(e, Error::Truncated | Error::Unavailable(_)),
        "{e:?}"
    );
}

/// Calls through a slow path still succeed, and take the added latency.
#[tokio::test]
async fn calls_through_added_latency_succeed() {
    let keys = Keys::new();
    let hub = server(&keys, Some(named("hub"))).await;
    let proxy = Proxy::start(hub.local_addr()).await;
    let c = client_to(&keys, proxy.addr()).connect().await.unwrap();
    proxy.latency(Duration::from_millis(25));
    let t = Instant::now();
    assert_eq!(c.get("/name").receive_text().await.unwrap(), "hub");
    let rtt = t.elapsed();
    println!(
        "call round trip with 25 ms added each way: {} ms",
        rtt.as_millis()
    );
    assert!(rtt >= Duration::from_millis(50), "{rtt:?}");
}

/// A connection cut after N bytes, over and over: every call ends with its own answer or a
/// typed error, none hangs, and the client is back once the path is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_cut_after_n_bytes_fail_calls_typed_and_recover() {
    let keys = Keys::new();
    let echo: Router = named("hub").route(
        "/echo",
        rrssh::routing::post(|body: String| async move { body }),
    );
    let hub = server(&keys, Some(echo)).await;
    let proxy = Proxy::start(hub.local_addr()).await;
    // Enough for the SSH handshake and a few calls, not for the big bodies below.
    proxy.cut_after(64 * 1024);
    let c = client_to(&keys, proxy.addr())
        .backoff(
            Backoff::default()
                .initial(Duration::from_millis(10))
                .max(Duration::from_millis(50)),
        )
        .connect_persistent();
    let (mut ok, mut failed) = (0, 0);
    for i in 0..40 {
        let body = format!("{i}:{}", "x".repeat(8 * 1024));
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            c.post("/echo")
                .timeout(Duration::from_secs(2))
                .body(body.clone())
                .receive_text(),
        )
        .await
        .expect("no call may hang");
        match r {
            Ok(t) => {
                assert_eq!(t, body, "a call got another call's answer");
                ok += 1;
            }
            Err(e) => {
                assert!(matches!(e, Error::Unavailable(_) | Error::Timeout), "{e:?}");
                failed += 1;
            }
        }
    }
    println!("cut after 64 KiB: {ok} calls answered, {failed} failed typed");
    assert!(failed > 0, "the cuts must have hit some calls");
    assert!(ok > 0, "calls between cuts must succeed");
    proxy.cut_after(0);
    let back = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(t) = c.get("/name").receive_text().await {
                break t;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("recovers on a clean path");
    assert_eq!(back, "hub");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_carrier_reconnects_through_dial_plain_tcp_after_a_restart() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let keys = Keys::new();
    let start = |addr: std::net::SocketAddr| {
        let keys = &keys;
        async move {
            server_builder(keys)
                .router(Router::new().route("/name", get(|| async { rrssh::Json("over tcp") })))
                .bind_tcp(addr)
                .await
                .expect("bind plain TCP")
        }
    };
    let hub = start("127.0.0.1:0".parse().unwrap()).await;
    let addr = hub.local_addr();
    let dials = Arc::new(AtomicUsize::new(0));
    let counted = dials.clone();
    let client = rrssh::transport::ReconnectingClient::new(
        move || {
            counted.fetch_add(1, Ordering::Relaxed);
            rrssh::Client::tcp(addr)
        },
        Backoff::default()
            .initial(Duration::from_millis(50))
            .max(Duration::from_millis(200)),
    );
    let first = tokio::time::timeout(Duration::from_secs(5), client.connected())
        .await
        .expect("connected over TCP");
    let name: String = first.get("/name").receive().await.unwrap();
    assert_eq!(name, "over tcp");
    assert_eq!(dials.load(Ordering::Relaxed), 1);

    drop(hub);
    assert!(
        eventually(Duration::from_secs(5), || !client.is_connected()).await,
        "the loss is noticed"
    );
    // Dialing goes on, with backoff, while nothing listens.
    assert!(
        eventually(Duration::from_secs(5), || dials.load(Ordering::Relaxed)
            >= 3)
        .await,
        "it keeps dialing"
    );
    let _hub = start(addr).await;
    let back = tokio::time::timeout(Duration::from_secs(5), client.connected())
        .await
        .expect("back over TCP after the restart");
    let name: String = back.get("/name").receive().await.unwrap();
    assert_eq!(name, "over tcp");
    // The reconnecting client itself is a service: typed calls go to the current connection.
    let name: String = client.get("/name").receive().await.unwrap();
    assert_eq!(name, "over tcp");
}
