//! The russh handler of a client's SSH connection: it checks the server's host key, and
//! serves the connections the server forwards back (remote tunnels, a service behind `sshd`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::Router;
use crate::connection::{Connection, ConnectionConfig};
use crate::keys::{HostKeyError, HostKeyPolicy, fingerprint};
use crate::proto::{Limits, Role};

pub(super) struct ClientHandler {
    pub(super) policy: HostKeyPolicy,
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) rejected: Arc<Mutex<Option<HostKeyError>>>,
    pub(super) server_key: Arc<Mutex<Option<String>>>,
    pub(super) forward: Option<ForwardServe>,
    pub(super) targets: RemoteTargets,
    /// Told why when the SSH connection ends (this handler is dropped with it).
    pub(super) lost: tokio::sync::watch::Sender<Option<String>>,
    /// The jump host's client this connection runs through, kept as long as it lives.
    pub(super) _via: Option<super::Client>,
}

impl Drop for ClientHandler {
    fn drop(&mut self) {
        self.lost.send_if_modified(|why| {
            why.get_or_insert_with(|| "SSH connection closed".to_owned());
            true
        });
    }
}

/// Where connections forwarded by the server go, by the port the server listens on
/// ([`Client::forward_remote`]).
pub(crate) type RemoteTargets = Arc<Mutex<HashMap<u32, (String, u16)>>>;

/// What to serve on connections the SSH server forwards to us (`tcpip-forward`).
#[derive(Clone)]
pub(super) struct ForwardServe {
    pub(super) router: Option<Router>,
    pub(super) limits: Limits,
}

impl russh::client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn disconnected(
        &mut self,
        reason: russh::client::DisconnectReason<Self::Error>,
    ) -> Result<(), Self::Error> {
        let why = match &reason {
            russh::client::DisconnectReason::ReceivedDisconnect(info) => {
                format!("the server disconnected: {}", info.message)
            }
            russh::client::DisconnectReason::Error(e) => format!("SSH connection lost: {e}"),
        };
        self.lost.send_replace(Some(why));
        match reason {
            russh::client::DisconnectReason::ReceivedDisconnect(_) => Ok(()),
            russh::client::DisconnectReason::Error(e) => Err(e),
        }
    }

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let (key, cert) = match key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => (key.clone(), None),
            russh::keys::PublicKeyOrCertificate::Certificate(cert) => (
                russh::keys::PublicKey::new(cert.public_key().clone(), ""),
                Some(cert.clone()),
            ),
        };
        let key = &key;
        // known_hosts is a file: read (and learned into) on a blocking thread.
        let (policy, host, port, owned) = (
            self.policy.clone(),
            self.host.clone(),
            self.port,
            key.clone(),
        );
        let checked = tokio::task::spawn_blocking(move || match &cert {
            Some(cert) => policy.check_certificate(&host, port, cert),
            None => policy.check(&host, port, &owned),
        })
        .await
        .unwrap_or_else(|e| {
            Err(crate::keys::HostKeyError::File {
                file: String::new(),
                message: format!("the check panicked: {e}"),
            })
        });
        match checked {
            Ok(()) => {
                *self.server_key.lock().unwrap_or_else(|e| e.into_inner()) = Some(fingerprint(key));
                Ok(true)
            }
            Err(e) => {
                tracing::debug!(error = %e, "host key refused");
                *self.rejected.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                Ok(false)
            }
        }
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: russh::Channel<russh::client::Msg>,
        connected_address: &str,
        connected_port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: russh::client::ChannelOpenHandle,
        _session: &mut russh::client::Session,
    ) -> Result<(), Self::Error> {
        let target = self
            .targets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&connected_port)
            .cloned();
        if let Some((host, port)) = target {
            tracing::debug!(
                listen = %format!("{connected_address}:{connected_port}"),
                from = %format!("{originator_address}:{originator_port}"),
                target = %format!("{host}:{port}"),
                "remote tunnel connection"
            );
            tokio::spawn(super::pipe::join(channel, reply, host, u32::from(port)));
            return Ok(());
        }
        let Some(forward) = self.forward.clone() else {
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        reply.accept().await;
        tracing::debug!(
            listen = %format!("{connected_address}:{connected_port}"),
            from = %format!("{originator_address}:{originator_port}"),
            "forwarded connection"
        );
        tokio::spawn(async move {
            let mut cfg = ConnectionConfig::new(Role::Acceptor);
            cfg.service = forward.router.map(crate::connection::Served::new);
            cfg.limits = forward.limits;
            match Connection::start(channel.into_stream(), cfg).await {
                Ok(conn) => {
                    let reason = conn.closed().await;
                    tracing::debug!(%reason, "forwarded connection closed");
                }
                Err(e) => tracing::debug!(error = %e, "forwarded connection failed its handshake"),
            }
        });
        Ok(())
    }
}
