//! Serving over SSH: the handshake within the auth timeout, and the session of each
//! connection.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::{MethodKind, MethodSet};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::watch;

use super::Server;
use super::ServerError;
use super::acceptor::SshAcceptor;
use super::admission::Admission;
use super::shared::Shared;
use crate::hub::listeners::ServeSsh;
use crate::hub::{Hub, Registry};

impl Server {
    /// Listens on `addr` and serves until the returned [`Hub`] is shut down or dropped.
    pub async fn bind(mut self, addr: impl ToSocketAddrs) -> Result<Hub, ServerError> {
        if self.host_keys.is_empty() {
            return Err(ServerError::NoHostKey);
        }
        let mut access = crate::keys::Access::new(std::mem::take(&mut self.authorized))
            .trusted_user_ca_keys(std::mem::take(&mut self.trusted_user_cas));
        if let Some(revoked) = self.revoked.take() {
            access = access.revoked_keys(revoked);
        }
        let access = access
            .resolve(self.user_keys.is_some())
            .map_err(|e| match e {
                crate::keys::AccessError::UnboundKey { line } => ServerError::UnboundKey { line },
                e => ServerError::Cluster(e.to_string()),
            })?;
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let budgets = self.budgets();
        let gauge = budgets.gauge();
        let mut methods = MethodSet::empty();
        methods.push(MethodKind::PublicKey);
        let config = Arc::new(russh::server::Config {
            keys: self.host_keys,
            certificates: self.host_certificates,
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
        let registry = Registry::with_policy(self.names.clone().reserve_from(&access.authorized))
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
        let router = match self.renewal {
            Some((ca, valid_for)) => {
                let renewal = super::renewal::router(ca, valid_for);
                Some(match router {
                    Some(r) => r.merge(renewal),
                    None => renewal,
                })
            }
            None => router,
        };
        let shared = Arc::new(Shared {
            router,
            access: super::access::Current::new(access),
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
            programs: self.programs,
            observers: crate::observe::Observers::new(self.observers),
        });
        let auth_timeout = self.auth_timeout;
        let admission = Admission::new(
            self.max_unauthenticated,
            self.max_unauthenticated_per_source,
        );
        let (stop_tx, mut stop_rx) = watch::channel(false);
        if let Some(backplane) = self.backplane {
            backplane
                .start(&config.keys, &registry, stop_rx.clone())
                .map_err(ServerError::Cluster)?;
        }
        let stop = async move {
            let _ = stop_rx.changed().await;
        };
        let acceptor: Arc<dyn ServeSsh> = Arc::new(SshAcceptor {
            shared,
            config,
            admission,
            auth_timeout,
        });
        let ssh = acceptor.clone();
        let accept = tokio::spawn(crate::accept::accept_loop(
            listener,
            stop,
            "server",
            move |tcp, remote| match ssh.admit(remote, "ssh") {
                Ok(serve) => serve(Box::new(tcp)),
                Err(why) => {
                    // Said without waiting (the line fits the socket's buffer) and closed at
                    // once: a refused connection holds no slot, task or descriptor.
                    let line = format!("rrssh: {why}; try again later\r\n");
                    let _ = tcp.try_write(line.as_bytes());
                    drop(tcp);
                    Box::pin(std::future::ready(()))
                        as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
                }
            },
        ));
        Ok(Hub::new(registry, local_addr, accept, stop_tx)
            .with_memory(gauge)
            .with_ssh(acceptor))
    }
}
