//! tower and tower-http layers on a `Router` served over SSH, and client-side layers on an SSH
//! client: trace spans with the peer and request id, timeouts, panics, body limits,
//! concurrency limits, load shedding, retries and default deadlines.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rrssh::client::{CallExt, DefaultDeadlineLayer, Error, RequestIdLayer, RetryPolicy};
use rrssh::error_handling::HandleErrorLayer;
use rrssh::routing::{get, post, put};
use rrssh::{Router, StatusCode};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing_subscriber::layer::SubscriberExt;

use super::{Keys, client, server};

/// Records the fields of every `rrssh.call` span.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<SpanFields>>>);

/// A span's fields, in the order they were recorded (its id first).
type SpanFields = Vec<(String, String)>;

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl<S> tracing_subscriber::Layer<S> for Spans
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if attrs.metadata().name() == "rrssh.call" {
            let mut fields = vec![("id".to_owned(), id.into_u64().to_string())];
            attrs.record(&mut Fields(&mut fields));
            self.0.lock().unwrap().push(fields);
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut spans = self.0.lock().unwrap();
        let key = id.into_u64().to_string();
        if let Some(fields) = spans.iter_mut().find(|f| f[0].1 == key) {
            values.record(&mut Fields(fields));
        }
    }
}

fn field<'a>(span: &'a [(String, String)], name: &str) -> Option<&'a str> {
    span.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn trace_spans_carry_the_peer_status_latency_and_request_id() {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let app: Router = Router::new().route("/ok", get(|| async { "ok" })).layer(
        TraceLayer::new_for_http()
            .make_span_with(rrssh::trace::call_span)
            .on_response(rrssh::trace::record_response),
    );
    let keys = Keys::new();
    let hub = server(&keys, Some(app)).await;
    let c = ServiceBuilder::new()
        .layer(RequestIdLayer::new())
        .service(client(&keys, &hub).connect().await.unwrap());
    assert_eq!(c.get("/ok").receive_text().await.unwrap(), "ok");
    assert_eq!(
        c.get("/ok")
            .header(
                "rrssh-request-id".parse().unwrap(),
                "order-42".parse().unwrap()
            )
            .receive_text()
            .await
            .unwrap(),
        "ok"
    );

    let spans = spans.0.lock().unwrap().clone();
    assert_eq!(spans.len(), 2, "one span per call: {spans:?}");
    for s in &spans {
        println!("span: {s:?}");
        assert_eq!(field(s, "method"), Some("GET"));
        assert_eq!(field(s, "path"), Some("/ok"));
        assert_eq!(field(s, "user"), Some("ada"));
        assert!(field(s, "fingerprint").unwrap().starts_with("SHA256:"));
        assert_eq!(field(s, "status"), Some("200"));
        assert!(field(s, "latency_ms").unwrap().parse::<f64>().unwrap() >= 0.0);
    }
    let generated = field(&spans[0], "request_id").unwrap();
    assert_eq!(
        generated.len(),
        16,
        "a generated id reaches the server: {generated}"
    );
    assert_eq!(field(&spans[1], "request_id"), Some("order-42"));
}

#[tokio::test]
async fn timeout_panic_and_body_limit_layers_answer_with_the_standard_error_json() {
    let app: Router = Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route(
            "/panic",
            get(|| async {
                if true {
                    panic!("handler bug");
                }
                "never"
            }),
        )
        .route("/echo", post(|b: String| async move { b }))
        .layer(
            ServiceBuilder::new()
                .layer(CatchPanicLayer::new())
                .layer(RequestBodyLimitLayer::new(1024))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::GATEWAY_TIMEOUT,
                    Duration::from_millis(100),
                )),
        );
    let keys = Keys::new();
    let hub = server(&keys, Some(app)).await;
    let c = client(&keys, &hub).connect().await.unwrap();

    async fn expect(res: rrssh::Response, want: u16) {
        use http_body_util::BodyExt;
        assert_eq!(res.status().as_u16(), want);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value =
            serde_json::from_slice(&body).unwrap_or_else(|_| panic!("{want}: not JSON: {body:?}"));
        println!("{want}: {json}");
        assert_eq!(json["error"]["status"], want, "the standard error JSON");
        assert!(json["error"]["message"].is_string());
    }
    expect(c.get("/slow").send().await.unwrap(), 504).await;
    expect(c.get("/panic").send().await.unwrap(), 500).await;
    expect(
        c.post("/echo").body(vec![b'x'; 4096]).send().await.unwrap(),
        413,
    )
    .await;
    assert_eq!(
        c.post("/echo").body("small").receive_text().await.unwrap(),
        "small"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_and_load_shedding_over_ssh() {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (r, p) = (running.clone(), peak.clone());
    let work = move || {
        let (r, p) = (r.clone(), p.clone());
        async move {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            r.fetch_sub(1, Ordering::SeqCst);
            "done"
        }
    };
    // Queued: at most 2 handlers at once, the rest wait.
    let queued: Router = Router::new()
        .route("/work", get(work.clone()))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(2));
    // Shed: over 2 at once, the call is answered 503 at once.
    let shed: Router = Router::new().route("/work", get(work)).layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::standard())
            .load_shed()
            .layer(tower::limit::GlobalConcurrencyLimitLayer::new(2)),
    );
    let keys = Keys::new();
    let hub = server(&keys, Some(queued)).await;
    let c = client(&keys, &hub).connect().await.unwrap();
    let calls = (0..10).map(|_| {
        let c = c.clone();
        async move { c.get("/work").receive_text().await }
    });
    let all = futures_util::future::join_all(calls).await;
    assert!(all.iter().all(|r| matches!(r.as_deref(), Ok("done"))));
    assert_eq!(peak.load(Ordering::SeqCst), 2);

    let hub = server(&keys, Some(shed)).await;
    let c = client(&keys, &hub).connect().await.unwrap();
    let calls = (0..10).map(|_| {
        let c = c.clone();
        async move { c.get("/work").receive_text().await }
    });
    let (mut ok, mut shed_503) = (0, 0);
    for r in futures_util::future::join_all(calls).await {
        match r {
            Ok(_) => ok += 1,
            Err(Error::Status { status, body }) if status == 503 => {
                assert!(body.message.contains("overloaded"));
                shed_503 += 1;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    println!("load shedding at 2: {ok} served, {shed_503} answered 503");
    assert!(ok >= 2 && shed_503 >= 1, "{ok} ok, {shed_503} shed");
    assert_eq!(ok + shed_503, 10);
}

/// Fails the first `n` calls with 503, then answers.
fn flaky(n: usize, calls: Arc<AtomicUsize>) -> Router {
    let c2 = calls.clone();
    Router::new()
        .route(
            "/thing",
            get(move || {
                let calls = calls.clone();
                async move {
                    if calls.fetch_add(1, Ordering::SeqCst) < n {
                        Err(rrssh::ApiError::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "warming up",
                        ))
                    } else {
                        Ok("thing")
                    }
                }
            })
            .post({
                let calls = c2.clone();
                move || {
                    let calls = calls.clone();
                    async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        Err::<&str, _>(rrssh::ApiError::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "warming up",
                        ))
                    }
                }
            }),
        )
        .route(
            "/put",
            put(move || {
                let calls = c2.clone();
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err::<&str, _>(rrssh::ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "still warming up",
                    ))
                }
            }),
        )
}

#[tokio::test]
async fn retries_only_idempotent_verbs_after_a_transient_503() {
    let calls = Arc::new(AtomicUsize::new(0));
    let keys = Keys::new();
    let hub = server(&keys, Some(flaky(2, calls.clone()))).await;
    let c = ServiceBuilder::new()
        .retry(RetryPolicy::new(3))
        .service(client(&keys, &hub).connect().await.unwrap());

    // GET: two 503s, then the answer.
    assert_eq!(c.get("/thing").receive_text().await.unwrap(), "thing");
    assert_eq!(calls.load(Ordering::SeqCst), 3, "the GET was tried 3 times");

    // POST: never retried.
    calls.store(0, Ordering::SeqCst);
    let err = c.post("/thing").receive_text().await.unwrap_err();
    assert!(matches!(err, Error::Status { status, .. } if status == 503));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the POST was sent once");

    // PUT that keeps failing: 1 try + 3 retries, then the 503.
    calls.store(0, Ordering::SeqCst);
    let err = c.put("/put").receive_text().await.unwrap_err();
    assert!(matches!(err, Error::Status { status, .. } if status == 503));
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_default_deadline_travels_with_every_call() {
    let app: Router = Router::new()
        .route(
            "/budget",
            get(|d: rrssh::Deadline| async move {
                d.remaining()
                    .map_or(0, |r| r.as_millis() as u64)
                    .to_string()
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
    let keys = Keys::new();
    let hub = server(&keys, Some(app)).await;
    let c = ServiceBuilder::new()
        .layer(DefaultDeadlineLayer::new(Duration::from_millis(300)))
        .service(client(&keys, &hub).connect().await.unwrap());
    let left: u64 = c
        .get("/budget")
        .receive_text()
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!(left > 0 && left <= 300, "the server saw {left} ms");
    // A per-call deadline wins over the default.
    let left: u64 = c
        .get("/budget")
        .timeout(Duration::from_secs(20))
        .receive_text()
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!(left > 10_000, "the server saw {left} ms");
    let started = std::time::Instant::now();
    let err = c.get("/slow").receive_text().await.unwrap_err();
    println!(
        "slow call with a 300 ms default deadline: {err} after {} ms",
        started.elapsed().as_millis()
    );
    assert!(
        matches!(&err, Error::Timeout)
            || matches!(&err, Error::Status { status, .. } if *status == 504),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}
