//! Keeping certificates renewed over a live connection: halfway between receiving a
//! certificate and its end, the server that holds its CA is asked for it again
//! (`POST /.well-known/rrssh/certificate`), and the new one replaces it for the next login.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::{Client, Renewed};
use crate::client::CallExt;

/// The shortest wait between two renewals, and after a failed one.
const MIN_WAIT: Duration = Duration::from_secs(1);
const RETRY: Duration = Duration::from_secs(30);

/// How long until the soonest certificate is halfway from `now` to its end.
fn halfway(renewed: &Renewed, now: SystemTime) -> Option<Duration> {
    let certs = renewed.lock().unwrap_or_else(|e| e.into_inner());
    certs
        .iter()
        .filter_map(|c| c.valid_before_time())
        .map(|end| end.duration_since(now).unwrap_or_default() / 2)
        .min()
}

/// Renews the certificates in `renewed` over `client` until the future is dropped (with the
/// connection).
pub(super) async fn keep_renewed(client: Client, renewed: Renewed) {
    let mut wait = match halfway(&renewed, SystemTime::now()) {
        Some(w) => w.max(MIN_WAIT),
        None => return,
    };
    loop {
        tokio::time::sleep(wait).await;
        match client
            .post(crate::keys::RENEW_PATH)
            .receive::<Value>()
            .await
        {
            Ok(answer) => {
                let fresh = answer["certificate"]
                    .as_str()
                    .and_then(|t| crate::keys::Certificate::from_openssh(t).ok());
                let Some(fresh) = fresh else {
                    tracing::warn!("certificate renewal: the answer holds no certificate");
                    wait = RETRY;
                    continue;
                };
                let old = {
                    let mut certs = renewed.lock().unwrap_or_else(|e| e.into_inner());
                    match certs
                        .iter_mut()
                        .find(|c| c.public_key() == fresh.public_key())
                    {
                        Some(slot) => Some(std::mem::replace(slot, fresh)),
                        None => None,
                    }
                };
                drop(old);
                tracing::info!("certificate renewed");
                wait = halfway(&renewed, SystemTime::now())
                    .unwrap_or(RETRY)
                    .max(MIN_WAIT);
            }
            Err(e) => {
                tracing::warn!(error = %e, "certificate renewal failed; trying again");
                wait = RETRY
                    .min(halfway(&renewed, SystemTime::now()).unwrap_or(RETRY))
                    .max(MIN_WAIT);
            }
        }
    }
}
