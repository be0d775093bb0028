//! Graceful shutdown: GOAWAY, calls in flight finish within the grace period, new calls and
//! connections are refused, reverse services move to another hub.

use std::time::{Duration, Instant};

use rrssh::Router;
use rrssh::client::{CallExt, Error};
use rrssh::routing::get;
use rrssh::transport::{Backoff, ConnectionEvent};

use super::{Keys, client, client_to, eventually, server, server_builder};

fn sleeper(name: &'static str, ms: u64) -> Router {
    Router::new()
        .route("/name", get(move || async move { name }))
        .route(
            "/slow",
            get(move || async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                "done"
            }),
        )
}

#[tokio::test]
async fn shutdown_lets_calls_in_flight_finish_and_refuses_new_ones() {
    let keys = Keys::new();
    let hub = server(&keys, Some(sleeper("hub", 300))).await;
    let addr = hub.local_addr();
    let c = client(&keys, &hub).connect().await.unwrap();
    let c2 = c.clone();
    let in_flight = tokio::spawn(async move { c2.get("/slow").receive_text().await });
    tokio::time::sleep(Duration::from_millis(50)).await;

    let started = Instant::now();
    let shutdown = tokio::spawn(hub.shutdown(Duration::from_secs(5)));
    // GOAWAY reaches the client: new calls fail at once, typed.
    let refused = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match c.get("/name").receive_text().await {
                Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                Err(e) => break e,
            }
        }
    })
    .await
    .expect("new calls are refused after GOAWAY");
    println!("new call during shutdown: {refused}");
    assert!(
        matches!(&refused, Error::Unavailable(m) if m.contains("going away"))
            || matches!(&refused, Error::Status { status, .. } if status.as_u16() == 503),
        "{refused:?}"
    );
    // The call in flight completes normally.
    assert_eq!(in_flight.await.unwrap().unwrap(), "done");
    let cut = shutdown.await.unwrap();
    let took = started.elapsed();
    println!("shutdown took {} ms, {cut} calls cut", took.as_millis());
    assert_eq!(cut, 0);
    assert!(took < Duration::from_secs(3), "{took:?}");
    // Nothing listens any more.
    assert!(client_to(&keys, addr).connect().await.is_err());
}

#[tokio::test]
async fn calls_still_running_after_the_grace_period_are_cut_typed() {
    let keys = Keys::new();
    let hub = server(&keys, Some(sleeper("hub", 30_000))).await;
    let c = client(&keys, &hub).connect().await.unwrap();
    let c2 = c.clone();
    let in_flight = tokio::spawn(async move { c2.get("/slow").receive_text().await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let cut = hub.shutdown(Duration::from_millis(200)).await;
    assert_eq!(cut, 1);
    let err = tokio::time::timeout(Duration::from_secs(5), in_flight)
        .await
        .expect("the cut call must not hang")
        .unwrap()
        .unwrap_err();
    println!(
        "cut after the grace period ({} ms): {err}",
        started.elapsed().as_millis()
    );
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
}

/// A reverse service told to go away dials again at once and finds the hub that took over the
/// port, while the call the old hub made to it completes on the old connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_told_to_go_away_moves_to_the_next_hub() {
    let keys = Keys::new();
    let old = server(&keys, None).await;
    let addr = old.local_addr();
    let svc = client(&keys, &old)
        .serve(sleeper("svc", 300))
        .service_name("svc")
        .backoff(
            Backoff::default()
                .initial(Duration::from_millis(20))
                .max(Duration::from_millis(100)),
        )
        .connect_persistent();
    assert!(eventually(Duration::from_secs(5), || old.peer("svc").is_connected()).await);
    let mut events = svc.events();
    let peer = old.peer("svc");
    let call = tokio::spawn(async move { peer.get("/slow").receive_text().await });
    tokio::time::sleep(Duration::from_millis(50)).await;

    let started = Instant::now();
    let shutdown = tokio::spawn(old.shutdown(Duration::from_secs(5)));
    // The old hub stopped listening: another takes the port.
    let new = loop {
        match server_builder(&keys).bind(addr).await {
            Ok(h) => break h,
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    let reason = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(ConnectionEvent::Disconnected { reason }) = events.recv().await {
                break reason;
            }
        }
    })
    .await
    .unwrap();
    println!("service: {reason}");
    assert!(reason.contains("server shutting down"), "{reason}");
    assert!(eventually(Duration::from_secs(5), || new.peer("svc").is_connected()).await);
    println!(
        "service registered with the new hub {} ms after shutdown began",
        started.elapsed().as_millis()
    );
    assert_eq!(call.await.unwrap().unwrap(), "done");
    assert_eq!(shutdown.await.unwrap(), 0);
    assert_eq!(
        new.peer("svc").get("/name").receive_text().await.unwrap(),
        "svc"
    );
}

/// Dropping the last clone of a client closes its connection, as dropping any client does:
/// connections made and dropped in a loop do not pile up on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_client_clone_closes_the_connection() {
    let keys = Keys::new();
    let hub = server(&keys, Some(sleeper("hub", 1))).await;
    for _ in 0..3 {
        let c = client(&keys, &hub).connect().await.unwrap();
        let c2 = c.clone();
        assert_eq!(c.get("/name").receive_text().await.unwrap(), "hub");
        drop(c);
        assert_eq!(
            c2.get("/name").receive_text().await.unwrap(),
            "hub",
            "a clone still works"
        );
        drop(c2);
    }
    let svc = client(&keys, &hub)
        .serve(sleeper("svc", 1))
        .service_name("svc")
        .connect()
        .await
        .unwrap();
    assert!(eventually(Duration::from_secs(5), || hub.peer("svc").is_connected()).await);
    drop(svc);
    assert!(
        eventually(Duration::from_secs(5), || hub.peers().is_empty()).await,
        "connections left open: {:?}",
        hub.peers().len()
    );
}
