//! Middleware on both sides of an SSH connection, all of it plain tower:
//!
//! - the server: tracing (one span per call with the caller's SSH user, key and request id),
//!   a timeout, authorization by scopes from `authorized_keys`, and a concurrency limit;
//! - the client: a request id, a default deadline, and retries of idempotent calls.
//!
//! It shows an allowed call, a 403, a timeout and a retry. Keys are generated in memory.
//!
//! ```sh
//! cargo run --example middleware
//! RUST_LOG=info cargo run --example middleware   # also print the server's trace spans
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rrssh::client::{CallExt, DefaultDeadlineLayer, Error, RequestIdLayer, RetryPolicy};
use rrssh::keys::{AuthorizedKeys, HostKeyPolicy, generate_ed25519};
use rrssh::{ApiError, Client, Path, Router, Server, StatusCode, get, post, routes};
use tower::ServiceBuilder;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Lists invoices (needs `billing:read`).
#[get("/invoices", scope = "billing:read")]
async fn invoices() -> &'static str {
    "[\"inv-1\", \"inv-2\"]"
}

/// Refunds an invoice (needs `billing:write`).
#[post("/refund/{id}", scope = "billing:write")]
async fn refund(Path(id): Path<String>) -> String {
    format!("refunded {id}")
}

/// A report that takes longer than the server's timeout.
#[get("/report", scope = "billing:read")]
async fn report() -> &'static str {
    tokio::time::sleep(Duration::from_secs(10)).await;
    "too late"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();

    // A status endpoint that is unavailable for its first two calls (it is warming up).
    let warming = Arc::new(AtomicUsize::new(0));
    let w = warming.clone();
    let status = move || {
        let w = w.clone();
        async move {
            match w.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "warming up")),
                _ => Ok("ready"),
            }
        }
    };

    let app = Router::new()
        .mount(routes![invoices, refund, report])
        .route("/status", rrssh::routing::get(status))
        .layer(
            ServiceBuilder::new()
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(rrssh::trace::call_span)
                        .on_response(rrssh::trace::record_response),
                )
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::GATEWAY_TIMEOUT,
                    Duration::from_millis(500),
                ))
                .layer(tower::limit::GlobalConcurrencyLimitLayer::new(64)),
        );

    // One authorized_keys file says who may connect and what each key may call.
    let host = generate_ed25519("middleware-example-host");
    let clerk = generate_ed25519("clerk@example");
    let authorized = AuthorizedKeys::parse(
        &format!(
            "rrssh-users=\"clerk\",rrssh-scopes=\"billing:read\" {}\n",
            clerk.public_key().to_openssh()?
        ),
        "authorized_keys",
    )?;
    let hub = Server::new()
        .router(app)
        .host_key(host.clone())
        .authorized_keys(authorized)
        .bind("127.0.0.1:0")
        .await?;
    println!("server on {}", hub.local_addr());

    let conn = Client::builder(hub.local_addr().to_string())
        .user("clerk")
        .identity(clerk)
        .host_keys(HostKeyPolicy::Pinned(host.public_key().clone()))
        .connect()
        .await?;
    let client = ServiceBuilder::new()
        .layer(RequestIdLayer::new())
        .layer(DefaultDeadlineLayer::new(Duration::from_secs(5)))
        .retry(RetryPolicy::new(3))
        .service(conn.clone());

    // Allowed: the clerk's key has billing:read.
    println!("GET /invoices -> {}", invoices::call(&client).await?);

    // Forbidden: refunds need billing:write.
    match refund::call(&client, "inv-1".to_owned()).await {
        Err(Error::Status { status, body }) => {
            println!("POST /refund/inv-1 -> {status}: {}", body.message);
        }
        other => println!("POST /refund/inv-1 -> unexpected {other:?}"),
    }

    // Timeout: the server's TimeoutLayer answers 504 after 500 ms.
    let started = std::time::Instant::now();
    match report::call(&client).await {
        Err(Error::Status { status, body }) => println!(
            "GET /report -> {status} after {} ms: {}",
            started.elapsed().as_millis(),
            body.message
        ),
        other => println!("GET /report -> unexpected {other:?}"),
    }

    // Retry: two 503s, then the answer, in one call from the caller's point of view.
    let ready = client.get("/status").receive_text().await?;
    println!(
        "GET /status -> {ready} (the server saw {} attempts)",
        warming.load(Ordering::SeqCst)
    );

    conn.close().await;
    hub.shutdown(Duration::from_secs(1)).await;
    Ok(())
}
