//! The connection engine under hostile input: a violation arriving in the same read as calls
//! that were received but not started, with body bytes buffered, must close that connection
//! only; the process goes on serving every other.

use std::future::Future;
use std::time::Duration;

use rrssh::client::CallExt;
use rrssh::connection::{Connection, ConnectionConfig};
use rrssh::proto::Role;
use rrssh::routing::{get, post};
use rrssh::{Bytes, Router};

use super::raw::{Raw, frame, request};

/// Runs `f` on a current-thread runtime of its own, on a thread of its own, and returns its
/// output, or `None` if it did not finish within `limit`: the runtime is stuck (a deadlock
/// blocks its only thread, and with it every connection it drives).
fn on_own_runtime<F, T>(limit: Duration, f: impl FnOnce() -> F + Send + 'static) -> Option<T>
where
    F: Future<Output = T>,
    T: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let out = rt.block_on(f());
        let _ = tx.send(out);
    });
    rx.recv_timeout(limit).ok()
}

fn app() -> Router {
    Router::new()
        .route("/name", get(|| async { "server" }))
        .route(
            "/upload",
            post(|b: Bytes| async move { b.len().to_string() }),
        )
}

/// The frames of a reader's one read: HELLO, two uploads whose first bytes are buffered, and
/// DATA past the connection window (GOAWAY 6).
fn overrun_with_unstarted_calls() -> Vec<u8> {
    let hello =
        r#"{"version":1,"max_frame":1048576,"window":1048576,"max_calls":8,"conn_window":1048576}"#;
    let mut b = frame(1, 0, 0, hello.as_bytes());
    b.extend(request(1, "POST", "/upload", false));
    b.extend(frame(4, 0, 1, &[7; 100]));
    b.extend(request(3, "POST", "/upload", false));
    b.extend(frame(4, 0, 3, &[7; 100]));
    b.extend(frame(4, 0, 3, &[7; 200]));
    b
}

/// Before: the reader dropped the unstarted calls (and their bodies, which give their window
/// back under the connection lock) while it held that lock, and the runtime stopped. Now the
/// violation closes that connection with GOAWAY 6, and the next connection is served.
#[test]
fn a_violation_with_unstarted_calls_in_the_same_read_closes_only_that_connection() {
    // Connection windows the 400 body bytes overrun.
    for conn_window in [256, 300, 399] {
        let outcome = on_own_runtime(Duration::from_secs(10), move || async move {
            let mut config = ConnectionConfig::new(Role::Acceptor).serve(app());
            config.limits.connection_window = conn_window;
            // One write: the reader gets it all in one read.
            let mut raw = Raw::start(config, &overrun_with_unstarted_calls()).await;
            let (code, _) = raw.goaway().await;
            // The process still serves: a new connection on the same runtime answers.
            let (x, y) = tokio::io::duplex(64 * 1024);
            let (a, _b) = tokio::join!(
                Connection::start(x, ConnectionConfig::new(Role::Initiator)),
                Connection::start(y, ConnectionConfig::new(Role::Acceptor).serve(app()))
            );
            let name = a.unwrap().get("/name").receive_text().await.unwrap();
            (code, name)
        });
        let (code, name) = outcome.expect("the runtime is stuck: the connection deadlocked");
        assert_eq!(code, 6, "GOAWAY 6: sent past the connection window");
        assert_eq!(name, "server");
    }
}
