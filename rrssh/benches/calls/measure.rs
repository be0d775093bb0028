//! Load generation and the figures it yields: rates, p50 and p99, medians of repetitions.

#![allow(clippy::unwrap_used)]

use crate::*;

#[derive(Clone, Copy, Default)]
pub(crate) struct Figure {
    pub(crate) rate: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
}

pub(crate) fn summarize(mut lat: Vec<Duration>, elapsed: Duration) -> Figure {
    lat.sort();
    let pick = |q: f64| {
        lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    Figure {
        rate: lat.len() as f64 / elapsed.as_secs_f64(),
        p50_us: pick(0.5),
        p99_us: pick(0.99),
    }
}

pub(crate) fn median(mut v: Vec<Figure>) -> Figure {
    v.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    v[v.len() / 2]
}

/// Waits for every task, in order.
pub(crate) async fn join_all<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// Bytes per second moved by `tasks` (each returns its byte count), timed from `start`.
pub(crate) async fn throughput(
    tasks: Vec<tokio::task::JoinHandle<usize>>,
    start: Instant,
) -> Figure {
    let got: usize = join_all(tasks).await.into_iter().sum();
    Figure {
        rate: got as f64 / start.elapsed().as_secs_f64(),
        ..Default::default()
    }
}

/// Runs `op` with `conc` workers for `dur`, measuring each operation.
pub(crate) async fn load<F, Fut>(conc: usize, dur: Duration, op: F) -> Figure
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let deadline = start + dur;
    let tasks: Vec<_> = (0..conc)
        .map(|_| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(4096);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    op().await;
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let all = join_all(tasks).await.into_iter().flatten().collect();
    summarize(all, start.elapsed())
}

/// GET `/hello` through any rrssh client with `conc` calls in flight.
pub(crate) async fn get_load<C>(c: &C, conc: usize, dur: Duration) -> Figure
where
    C: rrssh::client::Call + Clone + Send + Sync + 'static,
{
    let c = c.clone();
    load(conc, dur, move || {
        let c = c.clone();
        async move {
            c.get("/hello").receive::<Value>().await.unwrap();
        }
    })
    .await
}
