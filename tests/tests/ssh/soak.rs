//! Many calls across services that restart while they are called: every call ends with its own
//! answer or a typed error, never another call's answer and never a hang.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rrssh::client::{CallExt, Error};
use rrssh::hub::Registry;
use rrssh::routing::get;
use rrssh::transport::{Backoff, ReconnectingClient};
use rrssh::{Json, Path, Router};
use serde::{Deserialize, Serialize};

use super::{Keys, client, eventually, server};

const SERVICES: usize = 10;
const CALLS: u64 = 200_000;
const IN_FLIGHT: usize = 64;

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Echo {
    service: String,
    n: u64,
}

fn echo(name: String) -> Router {
    Router::new().route(
        "/echo/{n}",
        get(move |Path(n): Path<u64>| {
            let service = name.clone();
            async move { Json(Echo { service, n }) }
        }),
    )
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    unavailable: AtomicU64,
    timeout: AtomicU64,
    refused: AtomicU64,
    mismatched: AtomicU64,
    hung: AtomicU64,
    other: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_across_restarting_services_are_never_mixed_up_or_lost() {
    let keys = Keys::new();
    let hub = server(&keys, None).await;
    let start_service = |i: usize| -> ReconnectingClient {
        let name = format!("svc{i}");
        client(&keys, &hub)
            .serve(echo(name.clone()))
            .service_name(name)
            .backoff(
                Backoff::default()
                    .initial(Duration::from_millis(10))
                    .max(Duration::from_millis(100)),
            )
            .connect_persistent()
    };
    let mut services: Vec<ReconnectingClient> = (0..SERVICES).map(start_service).collect();
    assert!(eventually(Duration::from_secs(10), || hub.peers().len() == SERVICES).await);

    let registry: Registry = hub.registry();
    let next = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let workers: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (registry, next, tally) = (registry.clone(), next.clone(), tally.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= CALLS {
                        return;
                    }
                    let service = format!("svc{}", n as usize % SERVICES);
                    let peer = registry.peer(&service);
                    let call = peer
                        .get(&format!("/echo/{n}"))
                        .timeout(Duration::from_secs(2))
                        .receive::<Echo>();
                    let counter = match tokio::time::timeout(Duration::from_secs(10), call).await {
                        Err(_) => &tally.hung,
                        Ok(Ok(e)) if e == (Echo { service, n }) => &tally.ok,
                        Ok(Ok(_)) => &tally.mismatched,
                        Ok(Err(Error::Unavailable(_))) => &tally.unavailable,
                        Ok(Err(Error::Timeout)) => &tally.timeout,
                        Ok(Err(Error::Status { status, .. })) if status.as_u16() == 503 => {
                            &tally.refused
                        }
                        Ok(Err(e)) => {
                            eprintln!("untyped failure: {e:?}");
                            &tally.other
                        }
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    // Meanwhile, restart a random service every 100 ms.
    let mut restarts = 0u32;
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    while next.load(Ordering::Relaxed) < CALLS {
        tokio::time::sleep(Duration::from_millis(100)).await;
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let i = (rng % SERVICES as u64) as usize;
        if let Some(c) = services[i].current() {
            c.close().await;
        }
        services[i] = start_service(i);
        restarts += 1;
    }
    for w in workers {
        w.await.unwrap();
    }
    let took = started.elapsed();
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!(
        "{CALLS} calls at {IN_FLIGHT} in flight over {SERVICES} services, {restarts} restarts, {:.1} s ({:.0}/s): \
         {} ok, {} unavailable, {} timed out, {} refused 503, {} mismatched, {} hung, {} other",
        took.as_secs_f64(),
        CALLS as f64 / took.as_secs_f64(),
        get(&tally.ok),
        get(&tally.unavailable),
        get(&tally.timeout),
        get(&tally.refused),
        get(&tally.mismatched),
        get(&tally.hung),
        get(&tally.other),
    );
    assert_eq!(get(&tally.mismatched), 0, "answers were mixed up");
    assert_eq!(get(&tally.hung), 0, "calls hung past their deadline");
    assert_eq!(get(&tally.other), 0, "failures without a typed reason");
    let total =
        get(&tally.ok) + get(&tally.unavailable) + get(&tally.timeout) + get(&tally.refused);
    assert_eq!(total, CALLS, "every call is accounted for");
    assert!(restarts > 0);
    assert!(get(&tally.ok) > CALLS / 2, "most calls succeed");
}
