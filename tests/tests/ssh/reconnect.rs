//! Reconnection: services come back after the hub restarts; calls during an outage fail typed.

use std::time::{Duration, Instant};

use rrssh::client::{CallExt, Error};
use rrssh::routing::get;
use rrssh::transport::{Backoff, ConnectionEvent};
use rrssh::{Router, Server};

use super::{Keys, client, eventually, server};

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
    hub.shutdown();
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
    let hub = Server::new()
        .host_key(keys.host.clone())
        .authorized_keys(rrssh::keys::AuthorizedKeys::from_keys([keys
            .client
            .public_key()
            .clone()]))
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
    hub.shutdown();
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
    let _hub = Server::new()
        .router(named("hub again"))
        .host_key(keys.host.clone())
        .authorized_keys(rrssh::keys::AuthorizedKeys::from_keys([keys
            .client
            .public_key()
            .clone()]))
        .bind(addr)
        .await
        .unwrap();
    c.reconnect_now();
    assert_eq!(waiting.await.unwrap().unwrap(), "hub again");
}
