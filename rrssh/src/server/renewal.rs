//! Certificates renewed by the server that holds their CA key (`Server::renew_certificates`):
//! a caller logged in with a certificate of that CA, and granted the scope
//! [`RENEW_SCOPE`], asks for the same certificate again (`POST` [`RENEW_PATH`]) and gets it
//! valid for the server's renewal time from now. Devices then never hold a long-lived
//! credential: a device that stops renewing stops getting in.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use russh::keys::{Certificate, PrivateKey};
use serde_json::json;

use crate::routing::post;
use crate::{ApiError, Json, Peer, Router};

pub use crate::keys::{RENEW_PATH, RENEW_SCOPE};

/// The renewal route, signing with `ca` for `valid_for`.
pub(super) fn router(ca: Arc<PrivateKey>, valid_for: Duration) -> Router {
    Router::new()
        .route(
            RENEW_PATH,
            post(move |peer: Peer| {
                let ca = ca.clone();
                async move { renew(&ca, valid_for, &peer) }
            }),
        )
        .introspection(false)
}

fn renew(
    ca: &PrivateKey,
    valid_for: Duration,
    peer: &Peer,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Some(info) = peer.certificate() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "log in with the certificate to renew it",
        ));
    };
    if !peer.has_scope(RENEW_SCOPE) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("this certificate is not granted {RENEW_SCOPE}"),
        ));
    }
    let cert = Certificate::from_openssh(&info.openssh)
        .map_err(|e| ApiError::internal(format!("the certificate does not read back: {e}")))?;
    let renewed = crate::keys::renew_certificate(ca, &cert, valid_for)
        .map_err(|e| ApiError::new(StatusCode::FORBIDDEN, e.to_string()))?;
    let text = renewed
        .to_openssh()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    tracing::info!(key_id = %cert.key_id(), serial = cert.serial(), "certificate renewed");
    Ok(Json(json!({ "certificate": text })))
}
