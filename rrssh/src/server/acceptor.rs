//! What every listener hands an accepted byte stream to: admission before authentication, then
//! the SSH handshake within the auth timeout, then the session until it ends. The SSH listener
//! (raw TCP) and the web listener (SSH over WebSocket, raw SSH on a TLS port) both go through it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing::Instrument;

use super::admission::{Admission, Admitted};
use super::handler::ConnHandler;
use super::shared::Shared;
use crate::hub::listeners::{ServeSsh, SshTicket};
use crate::proxy::Tunnel;

/// The SSH side of one server, for every listener it has.
pub(super) struct SshAcceptor {
    pub(super) shared: Arc<Shared>,
    pub(super) config: Arc<russh::server::Config>,
    pub(super) admission: Admission,
    pub(super) auth_timeout: Duration,
}

impl ServeSsh for SshAcceptor {
    fn admit(&self, remote: SocketAddr, carrier: &'static str) -> Result<SshTicket, String> {
        let source = crate::keys::canonical_addr(remote.ip());
        let admitted = self.admission.admit(source).inspect_err(|why| {
            crate::logging::limited("unauthenticated-limit", || {
                tracing::warn!(%remote, "{why}; refused");
            });
        })?;
        let (shared, config, auth_timeout) =
            (self.shared.clone(), self.config.clone(), self.auth_timeout);
        let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
        // What the connection logs, from its handshake to its calls, is in this span; the
        // user and key are recorded at login.
        let span = tracing::info_span!(
            "connection",
            id,
            carrier,
            %remote,
            user = tracing::field::Empty,
            fingerprint = tracing::field::Empty,
        );
        Ok(Box::new(move |io| {
            let session = session(
                shared,
                config,
                auth_timeout,
                io,
                remote,
                admitted,
                (id, carrier),
            );
            Box::pin(session.instrument(span))
        }))
    }

    fn reload_access(&self, access: crate::keys::Access) -> Result<(), crate::keys::AccessError> {
        let resolved = access.resolve(self.shared.user_keys.is_some())?;
        self.shared.registry.reserve_from(&resolved.authorized);
        self.shared.access.replace(resolved);
        Ok(())
    }
}

/// One connection: the handshake (dropped early if it gives way to another's), then the
/// session.
async fn session(
    shared: Arc<Shared>,
    config: Arc<russh::server::Config>,
    auth_timeout: Duration,
    io: Box<dyn Tunnel>,
    remote: SocketAddr,
    admitted: Admitted,
    (id, carrier): (u64, &'static str),
) {
    let evicted = admitted.evicted();
    let authed = Arc::new(AtomicBool::new(false));
    let handler = ConnHandler {
        shared,
        conn_id: id,
        span: tracing::Span::current(),
        carrier,
        remote: Some(remote),
        peer: None,
        authed: authed.clone(),
        key_slot: None,
        over_limit: None,
        forced_command: None,
        sessions: super::sessions::Sessions::default(),
        open_tunnels: Arc::new(()),
        pending: Some(admitted),
        channels: HashMap::new(),
        tunnels: None,
        listeners: HashMap::new(),
        programs: None,
    };
    // The whole handshake (version exchange, key exchange, authentication) must finish within
    // the auth timeout, however slowly the peer sends.
    let deadline = tokio::time::Instant::now() + auth_timeout;
    // Boxed apart and freed once done: the handshake's state is large, and this task lives as
    // long as the connection.
    let started = Box::pin(tokio::time::timeout_at(
        deadline,
        russh::server::run_stream(config, io, handler),
    ));
    // Dropped to make room for a login from an address that holds fewer handshakes (see
    // `admission`).
    let gave_way = async {
        evicted.notified().await;
        crate::logging::limited("handshake-evicted", || {
            tracing::warn!(%remote, "unauthenticated connection dropped to admit another");
        });
    };
    let mut gave_way = std::pin::pin!(gave_way);
    let started = tokio::select! {
        s = started => s,
        () = &mut gave_way => return,
    };
    let session = match started {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, %remote, "SSH handshake failed");
            return;
        }
        Err(_) => {
            crate::logging::limited("handshake-timeout", || {
                tracing::warn!(%remote, "SSH handshake timed out");
            });
            return;
        }
    };
    let handle = session.handle();
    // russh runs the session in its own task: end it when this task is aborted.
    let _guard = DisconnectOnDrop(handle.clone());
    let mut session = std::pin::pin!(session);
    tokio::select! {
        r = &mut session => {
            if let Err(e) = r { tracing::debug!(error = %e, %remote, "session ended"); }
            return;
        }
        _ = tokio::time::sleep_until(deadline) => {}
        () = &mut gave_way => return,
    }
    if !authed.load(Ordering::Acquire) {
        crate::logging::limited("auth-timeout", || {
            tracing::warn!(%remote, "authentication timed out");
        });
        let _ = handle
            .disconnect(
                russh::Disconnect::ByApplication,
                "authentication timed out".into(),
                String::new(),
            )
            .await;
        return;
    }
    let _ = session.await;
}

/// Disconnects an SSH session when dropped (the hub went away).
struct DisconnectOnDrop(russh::server::Handle);

impl Drop for DisconnectOnDrop {
    fn drop(&mut self) {
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let handle = self.0.clone();
            rt.spawn(async move {
                let _ = handle
                    .disconnect(
                        russh::Disconnect::ByApplication,
                        "server shutting down".into(),
                        String::new(),
                    )
                    .await;
            });
        }
    }
}
