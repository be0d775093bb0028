//! Serving over SSH: the handshake within the auth timeout, and the session of each
//! connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::{MethodKind, MethodSet};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::watch;

use super::Server;
use super::ServerError;
use super::admission::Admission;
use super::handler::ConnHandler;
use super::shared::Shared;
use crate::hub::{Hub, Registry};

impl Server {
    /// Listens on `addr` and serves until the returned [`Hub`] is shut down or dropped.
    pub async fn bind(self, addr: impl ToSocketAddrs) -> Result<Hub, ServerError> {
        if self.host_keys.is_empty() {
            return Err(ServerError::NoHostKey);
        }
        if let Some(k) = self.authorized.unbound() {
            return Err(ServerError::UnboundKey { line: k.line });
        }
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let budgets = self.budgets();
        let gauge = budgets.gauge();
        let mut methods = MethodSet::empty();
        methods.push(MethodKind::PublicKey);
        let config = Arc::new(russh::server::Config {
            keys: self.host_keys,
            methods,
            auth_rejection_time: self.auth_rejection_time,
            auth_rejection_time_initial: Some(Duration::ZERO),
            max_auth_attempts: self.max_auth_attempts,
            inactivity_timeout: None,
            keepalive_interval: Some(self.keepalive.0),
            keepalive_max: self.keepalive.1,
            nodelay: true,
            preferred: crate::transport::preferred(),
            ..Default::default()
        });
        let registry = Registry::with_policy(self.names.clone().reserve_from(&self.authorized))
            .with_relay_policy(self.relay_policy);
        let router = if self.relay {
            let relay = crate::hub::relay::relay_router(registry.clone());
            Some(match self.router {
                Some(r) => r.merge(relay),
                None => relay.introspection(true),
            })
        } else {
            self.router
        };
        let shared = Arc::new(Shared {
            router,
            authorized: self.authorized,
            user_keys: self.user_keys,
            max_sessions: self.max_sessions,
            max_tunnels: self.max_tunnels,
            max_listeners: self.max_listeners,
            registry: registry.clone(),
            limits: self.limits,
            next_conn: AtomicU64::new(1),
            max_per_key: self.max_per_key,
            per_key: Mutex::new(HashMap::new()),
            budgets,
            permit_open: self.permit_open,
            permit_listen: self.permit_listen,
            #[cfg(feature = "terminal")]
            terminal: self.terminal,
        });
        let auth_timeout = self.auth_timeout;
        let admission = Admission::new(
            self.max_unauthenticated,
            self.max_unauthenticated_per_source,
        );
        let (stop_tx, mut stop_rx) = watch::channel(false);
        #[cfg(feature = "cluster")]
        if let Some(c) = self.cluster {
            let node = crate::cluster::start(c, &config.keys, registry.clone(), stop_rx.clone())
                .map_err(ServerError::Cluster)?;
            registry.set_remote(node);
        }
        let stop = async move {
            let _ = stop_rx.changed().await;
        };
        let accept = tokio::spawn(crate::transport::accept::accept_loop(
            listener,
            stop,
            "server",
            move |tcp, remote| {
                let source = crate::keys::canonical_addr(remote.ip());
                let admitted = match admission.admit(source) {
                    Ok(a) => a,
                    Err(why) => {
                        crate::logging::limited("unauthenticated-limit", || {
                            tracing::warn!(%remote, "{why}; refused");
                        });
                        // Said without waiting (the line fits the socket's buffer) and closed at
                        // once: a refused connection holds no slot, task or descriptor.
                        let line = format!("rrssh: {why}; try again later\r\n");
                        let _ = tcp.try_write(line.as_bytes());
                        drop(tcp);
                        return Box::pin(std::future::ready(()))
                            as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
                    }
                };
                let evicted = admitted.evicted();
                let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
                let authed = Arc::new(AtomicBool::new(false));
                let handler = ConnHandler {
                    shared: shared.clone(),
                    conn_id: id,
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
                    #[cfg(feature = "terminal")]
                    terminal_refusal: None,
                    #[cfg(feature = "terminal")]
                    ptys: HashMap::new(),
                    #[cfg(feature = "terminal")]
                    resizers: HashMap::new(),
                };
                let config = config.clone();
                Box::pin(async move {
                    // The whole handshake (version exchange, key exchange, authentication)
                    // must finish within the auth timeout, however slowly the peer sends.
                    let deadline = tokio::time::Instant::now() + auth_timeout;
                    // Boxed apart and freed once done: the handshake's state is large, and this
                    // task lives as long as the connection.
                    let started = Box::pin(tokio::time::timeout_at(
                        deadline,
                        russh::server::run_stream(config, tcp, handler),
                    ));
                    // Dropped to make room for a login from an address that holds fewer
                    // handshakes (see `admission`).
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
                })
            },
        ));
        Ok(Hub::new(registry, local_addr, accept, stop_tx).with_memory(gauge))
    }
}

/// A running rrssh server: its address, the peers connected to it, and clients to call them.
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
