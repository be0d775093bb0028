//! The russh handler of one SSH connection: authentication, and the channels it opens (the
//! `rrssh` subsystem, tunnels, terminals).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::Instrument;

use russh::server::{Auth, Msg, Session};
use russh::{Channel, ChannelId};
use tokio::net::TcpListener;
use tokio_util::task::AbortOnDropHandle;

use super::admission::Admitted;
use super::sessions::Sessions;
use super::shared::Shared;
use super::slots::KeySlot;
use crate::connection::{Connection, ConnectionConfig};
use crate::extract::Peer;
use crate::keys::fingerprint;
use crate::observe::Event;
use crate::proto::Role;
use crate::proto::frame::goaway;
use crate::transport::SUBSYSTEM;

pub(super) struct ConnHandler {
    pub(super) shared: Arc<Shared>,
    pub(super) conn_id: u64,
    /// The connection's log span (`connection`: id, carrier, remote, user, fingerprint): the
    /// tasks of its channels run in it.
    pub(super) span: tracing::Span,
    /// How the connection came (`ssh`, `websocket`, …).
    pub(super) carrier: &'static str,
    pub(super) remote: Option<SocketAddr>,
    pub(super) peer: Option<Peer>,
    pub(super) authed: Arc<AtomicBool>,
    /// One of the key's connection slots, taken at authentication.
    pub(super) key_slot: Option<KeySlot>,
    /// Set when the key already holds its limit of connections: the connection only says so.
    pub(super) over_limit: Option<String>,
    /// The forced command of the key's line (`command="…"`), which replaces whatever the
    /// client asks to run; the `rrssh` subsystem is refused then.
    pub(super) forced_command: Option<String>,
    /// Every open session channel (the cap is `Server::max_sessions`), shared with the tasks
    /// that serve them.
    pub(super) sessions: Sessions,
    /// Open `direct-tcpip` tunnels of this connection.
    pub(super) open_tunnels: Arc<()>,
    /// Counts this connection as unauthenticated until it authenticates.
    pub(super) pending: Option<Admitted>,
    pub(super) channels: HashMap<ChannelId, Channel<Msg>>,
    /// What the authenticated key may tunnel to.
    pub(super) tunnels: Option<crate::tunnel::serve::KeyTunnels>,
    /// Ports listened on for the client's remote tunnels; stopped when dropped.
    pub(super) listeners: HashMap<(String, u32), AbortOnDropHandle<()>>,
    /// The programs (terminals) this connection's key gets, once authenticated.
    pub(super) programs: Option<Box<dyn crate::terminal::programs::ConnectionPrograms>>,
}

impl ConnHandler {
    /// Forgets a channel that is closed: its slot, and what was kept for it.
    pub(super) fn forget(&mut self, channel: ChannelId) {
        self.channels.remove(&channel);
        self.sessions.remove(channel);
        if let Some(p) = self.programs.as_mut() {
            p.forget(channel);
        }
    }
}

impl ConnHandler {
    /// The key `fp` logged in as `user` by `entry` (a certificate's, with what it said): its
    /// connection slot, its peer, tunnels and programs.
    fn logged_in(
        &mut self,
        user: &str,
        entry: &crate::keys::AuthorizedKey,
        fp: String,
        certificate: Option<crate::extract::CertificateInfo>,
    ) -> Auth {
        match KeySlot::take(&self.shared, &fp) {
            Ok(slot) => self.key_slot = Some(slot),
            Err(held) => {
                let limit = self.shared.max_per_key;
                crate::logging::limited("per-key-limit", || {
                    tracing::warn!(fingerprint = %fp, user, limit, "too many connections for one key; refused");
                });
                self.over_limit = Some(format!(
                    "too many connections for key {fp} ({held} open, limit {limit})"
                ));
            }
        }
        if let Some(o) = &self.shared.observers {
            o.emit(&Event::Login {
                user,
                fingerprint: &fp,
                certificate: certificate.as_ref().map(|c| c.key_id.as_str()),
                remote: self.remote,
                carrier: self.carrier,
                refused: self.over_limit.as_deref(),
            });
        }
        self.span.record("user", user);
        self.span.record("fingerprint", fp.as_str());
        let mut info = entry.peer_info(user, fp).connection_id(self.conn_id);
        info.remote_addr = self.remote;
        info.certificate = certificate;
        self.tunnels = Some(crate::tunnel::serve::KeyTunnels::of(entry));
        self.grant_programs(entry);
        self.forced_command = entry.forced_command().map(str::to_owned);
        self.peer = Some(Peer::new(info));
        self.authed.store(true, Ordering::Release);
        self.pending = None;
        Auth::Accept
    }
}

impl russh::server::Handler for ConnHandler {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: russh::server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        // Boxed (here and below): the session's task would otherwise keep room for this
        // state for as long as the connection lives.
        Ok(
            match Box::pin(self.shared.authorize(user, offer.public_key, self.remote)).await {
                Ok(_) => Auth::Accept,
                // The offer does not say whether the key came in a certificate: where
                // certificates may log in, it may sign (unless revoked), and its certificate
                // is checked then.
                Err(_)
                    if self.shared.takes_certificates()
                        && !self.shared.is_revoked(offer.public_key) =>
                {
                    Auth::Accept
                }
                Err(_) => Auth::reject(),
            },
        )
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let entry = match Box::pin(self.shared.authorize(user, key.public_key, self.remote)).await {
            Ok(entry) => entry,
            Err(why) => {
                let remote = self.remote;
                if let Some(o) = &self.shared.observers {
                    o.emit(&Event::Login {
                        user,
                        fingerprint: &fingerprint(key.public_key),
                        certificate: None,
                        remote,
                        carrier: self.carrier,
                        refused: Some(&why),
                    });
                }
                crate::logging::limited("key-refused", || {
                    tracing::warn!(user, fingerprint = %fingerprint(key.public_key), ?remote, "key refused: {why}");
                });
                return Ok(Auth::reject());
            }
        };
        let fp = fingerprint(key.public_key);
        Ok(self.logged_in(user, &entry, fp, None))
    }

    async fn auth_openssh_certificate(
        &mut self,
        user: &str,
        certificate: &russh::keys::Certificate,
    ) -> Result<Auth, Self::Error> {
        let (entry, info) = match Box::pin(self.shared.authorize_certificate(
            user,
            certificate,
            self.remote,
        ))
        .await
        {
            Ok(found) => found,
            Err(why) => {
                let (remote, id) = (self.remote, certificate.key_id().to_owned());
                if let Some(o) = &self.shared.observers {
                    o.emit(&Event::Login {
                        user,
                        fingerprint: &certificate
                            .public_key()
                            .fingerprint(russh::keys::HashAlg::Sha256)
                            .to_string(),
                        certificate: Some(&id),
                        remote,
                        carrier: self.carrier,
                        refused: Some(&why),
                    });
                }
                crate::logging::limited("certificate-refused", || {
                    tracing::warn!(user, key_id = %id, ?remote, "certificate refused: {why}");
                });
                return Ok(Auth::reject());
            }
        };
        let fp = fingerprint(&entry.key);
        Ok(self.logged_in(user, &entry, fp, Some(info)))
    }

    async fn auth_succeeded(&mut self, session: &mut Session) -> Result<(), Self::Error> {
        if let Some(msg) = self.over_limit.clone() {
            // Time enough to say why on an rrssh channel, then the connection goes.
            let handle = session.handle();
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                let _ = handle
                    .disconnect(russh::Disconnect::TooManyConnections, msg, String::new())
                    .await;
            });
        }
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.peer.is_some() && self.sessions.len() >= self.shared.max_sessions {
            let limit = self.shared.max_sessions;
            crate::logging::limited("session-limit", || {
                tracing::warn!(
                    limit,
                    "too many session channels on one connection; refused"
                );
            });
            reply
                .reject(russh::ChannelOpenFailure::ResourceShortage)
                .await;
        } else if self.peer.is_some() && (self.over_limit.is_none() || self.sessions.is_empty()) {
            // A connection over its key's limit gets one channel, to hear why.
            self.sessions.insert(channel.id());
            self.channels.insert(channel.id(), channel);
            reply.accept().await;
        } else {
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
        }
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let (Some(peer), Some(tunnels), None) = (&self.peer, &self.tunnels, &self.over_limit)
        else {
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        // Every running tunnel holds a clone of `open_tunnels`.
        let open = Arc::strong_count(&self.open_tunnels) - 1;
        if open >= self.shared.max_tunnels {
            let limit = self.shared.max_tunnels;
            crate::logging::limited("tunnel-limit", || {
                tracing::warn!(limit, "too many tunnels on one connection; refused");
            });
            reply
                .reject(russh::ChannelOpenFailure::ResourceShortage)
                .await;
            return Ok(());
        }
        let refusal = tunnels.refusal(&self.shared.permit_open, host_to_connect, port_to_connect);
        if let Some(o) = &self.shared.observers {
            o.emit(&Event::Tunnel {
                peer,
                target: &format!("{host_to_connect}:{port_to_connect}"),
                refused: refusal,
            });
        }
        if let Some(why) = refusal {
            crate::logging::limited("listen-refused", || {
                tracing::warn!(
                    fingerprint = %peer.fingerprint(),
                    user = %peer.user(),
                    target = %format!("{host_to_connect}:{port_to_connect}"),
                    "tunnel refused: {why}"
                );
            });
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        tracing::debug!(fingerprint = %peer.fingerprint(), target = %format!("{host_to_connect}:{port_to_connect}"), "tunnel opened");
        let held = self.open_tunnels.clone();
        let target = host_to_connect.to_owned();
        let piping = async move {
            crate::transport::pipe::join(channel, reply, target, port_to_connect).await;
            drop(held);
        };
        tokio::spawn(piping.instrument(self.span.clone()));
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let (Some(peer), Some(tunnels), None) = (&self.peer, &self.tunnels, &self.over_limit)
        else {
            return Ok(false);
        };
        if self.listeners.len() >= self.shared.max_listeners {
            let limit = self.shared.max_listeners;
            crate::logging::limited("listener-limit", || {
                tracing::warn!(
                    limit,
                    "too many remote-tunnel listeners on one connection; refused"
                );
            });
            return Ok(false);
        }
        if (1..1024).contains(&*port) {
            crate::logging::limited("privileged-port", || {
                tracing::warn!(
                    port = *port,
                    "remote tunnel refused: ports below 1024 are never listened on for a client"
                );
            });
            return Ok(false);
        }
        let host = crate::tunnel::serve::listen_host(address);
        if let Some(why) = tunnels.listen_refusal(&self.shared.permit_listen, &host, *port) {
            tracing::warn!(
                fingerprint = %peer.fingerprint(),
                user = %peer.user(),
                listen = %format!("{host}:{port}"),
                "remote tunnel refused: {why}"
            );
            return Ok(false);
        }
        let Ok(requested) = u16::try_from(*port) else {
            return Ok(false);
        };
        let listener = match TcpListener::bind((host.as_str(), requested)).await {
            Ok(l) => l,
            Err(e) => {
                crate::logging::limited("listen-failed", || {
                    tracing::warn!(listen = %format!("{host}:{requested}"), error = %e, "remote tunnel: cannot listen");
                });
                return Ok(false);
            }
        };
        let actual = u32::from(listener.local_addr().map(|a| a.port()).unwrap_or(requested));
        if *port == 0 {
            *port = actual;
        }
        tracing::info!(fingerprint = %peer.fingerprint(), listen = %format!("{host}:{actual}"), "remote tunnel listening");
        let task = tokio::spawn(crate::tunnel::serve::accept_forwarded(
            listener,
            session.handle(),
            address.to_owned(),
            actual,
        ));
        self.listeners
            .insert((address.to_owned(), actual), AbortOnDropHandle::new(task));
        Ok(true)
    }

    async fn cancel_tcpip_forward(
        &mut self,
        address: &str,
        port: u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(self.listeners.remove(&(address.to_owned(), port)).is_some())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let (Some(ch), Some(peer)) = (self.channels.remove(&channel), self.peer.clone()) else {
            session.channel_failure(channel)?;
            return Ok(());
        };
        if name != SUBSYSTEM {
            tracing::debug!(name, "refused unknown subsystem");
            session.channel_failure(channel)?;
            return Ok(());
        }
        if self.forced_command.is_some() {
            crate::logging::limited("forced-command", || {
                tracing::warn!(fingerprint = %peer.fingerprint(), "rrssh refused: the key has a forced command (command=)");
            });
            session.channel_failure(channel)?;
            return Ok(());
        }
        session.channel_success(channel)?;
        let shared = self.shared.clone();
        let over_limit = self.over_limit.clone();
        let sessions = self.sessions.clone();
        let handle = session.handle();
        let serving = async move {
            serve_rrssh(shared, ch, peer, over_limit).await;
            // The rrssh connection ended (either side closed it, or the peer broke the
            // protocol): the channel ends with it, whether or not the client closes it.
            sessions.end(channel, &handle).await;
        };
        tokio::spawn(serving.instrument(self.span.clone()));
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(data).into_owned();
        self.start_program(channel, Some(command), session)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.start_program(channel, None, session)
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        col_width: u32,
        row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let pty = crate::terminal::programs::PtyRequest {
            term: term.to_owned(),
            cols: u16::try_from(col_width).unwrap_or(u16::MAX),
            rows: u16::try_from(row_height).unwrap_or(u16::MAX),
        };
        self.pty_requested(channel, pty, session)
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        col_width: u32,
        row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.resized(channel, col_width, row_height);
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.forget(channel);
        Ok(())
    }
}

/// Runs an rrssh connection on a session channel until it ends and its last frames are sent.
async fn serve_rrssh(
    shared: Arc<Shared>,
    ch: Channel<Msg>,
    peer: Peer,
    over_limit: Option<String>,
) {
    let mut cfg = ConnectionConfig::new(Role::Acceptor).extension(peer.clone());
    if let Some(o) = &shared.observers {
        cfg = cfg.extension(o.clone());
    }
    cfg.service = shared.router.clone().map(crate::connection::Served::new);
    cfg.limits = shared.limits;
    cfg.account = shared.budgets.account(Some(peer.fingerprint()));
    // Boxed and freed once done: this task lives as long as the connection, the handshake's
    // state only until HELLO.
    let conn = match Box::pin(Connection::start(ch.into_stream(), cfg)).await {
        Ok(c) => c,
        Err(e) => {
            crate::logging::limited("handshake", || {
                tracing::warn!(error = %e, "rrssh handshake failed");
            });
            return;
        }
    };
    if let Some(msg) = over_limit {
        conn.close_with(goaway::LIMIT, &msg);
        conn.flushed().await;
        return;
    }
    tracing::debug!("rrssh connection open");
    shared.registry.hold(peer, conn.clone()).await;
    tracing::debug!("rrssh connection closed");
    // The last frames (the GOAWAY that says why) go out before the channel ends.
    conn.flushed().await;
}
