//! The russh handler of one SSH connection: authentication, and the channels it opens (the
//! `rrssh` subsystem, tunnels, terminals).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use russh::server::{Auth, Msg, Session};
use russh::{Channel, ChannelId};
use tokio::net::TcpListener;

use super::slots::{KeySlot, Pending};
use super::ssh::Shared;
use crate::connection::{Connection, ConnectionConfig};
use crate::extract::Peer;
use crate::keys::fingerprint;
use crate::proto::Role;
use crate::proto::frame::goaway;
use crate::transport::SUBSYSTEM;

pub(super) struct ConnHandler {
    pub(super) shared: Arc<Shared>,
    pub(super) conn_id: u64,
    pub(super) remote: Option<SocketAddr>,
    pub(super) peer: Option<Peer>,
    pub(super) authed: Arc<AtomicBool>,
    /// Counts this connection as unauthenticated until it authenticates.
    pub(super) pending: Option<Pending>,
    pub(super) channels: HashMap<ChannelId, Channel<Msg>>,
    /// What the authenticated key may tunnel to.
    pub(super) tunnels: Option<crate::tunnel::serve::KeyTunnels>,
    /// Ports listened on for the client's remote tunnels; stopped when dropped.
    pub(super) listeners: HashMap<(String, u32), AbortOnDrop>,
    /// Whether the key may have a pseudo-terminal (`no-pty`, `restrict`).
    pub(super) pty_allowed: bool,
    /// Pty requests per channel, until the shell or command starts.
    #[cfg(feature = "terminal")]
    pub(super) ptys: HashMap<ChannelId, crate::terminal::PtyRequest>,
    /// Window size changes for running terminal sessions.
    #[cfg(feature = "terminal")]
    pub(super) resizers: HashMap<ChannelId, tokio::sync::mpsc::UnboundedSender<(u16, u16)>>,
}

impl ConnHandler {
    /// Starts a terminal session on `channel` if the server serves them and the key may;
    /// `false` otherwise.
    #[cfg(feature = "terminal")]
    fn start_terminal(
        &mut self,
        channel: ChannelId,
        command: Option<String>,
        session: &mut Session,
    ) -> bool {
        let (Some(terminal), Some(peer)) = (self.shared.terminal.clone(), self.peer.clone()) else {
            return false;
        };
        if !self.pty_allowed {
            tracing::warn!(fingerprint = %peer.fingerprint(), "terminal refused: no-pty for this key");
            return false;
        }
        let Some(ch) = self.channels.remove(&channel) else {
            return false;
        };
        let pty = self.ptys.remove(&channel).unwrap_or_default();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.resizers.insert(channel, tx);
        tokio::spawn(crate::terminal::run(
            terminal,
            command,
            pty,
            peer,
            ch,
            session.handle(),
            rx,
        ));
        true
    }

    #[cfg(not(feature = "terminal"))]
    #[allow(
        clippy::unused_self,
        reason = "the same signature as with the terminal feature"
    )]
    fn start_terminal(&mut self, _: ChannelId, _: Option<String>, _: &mut Session) -> bool {
        false
    }
}

/// Aborts a task when dropped.
pub(super) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl ConnHandler {
    fn find(&self, key: &russh::keys::PublicKey) -> Option<&crate::keys::AuthorizedKey> {
        self.shared
            .authorized
            .find(key, self.remote.map(|a| a.ip()))
    }
}

impl russh::server::Handler for ConnHandler {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: russh::server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.find(offer.public_key).is_some() {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let Some(entry) = self.find(key.public_key) else {
            tracing::warn!(user, fingerprint = %fingerprint(key.public_key), remote = ?self.remote, "key refused");
            return Ok(Auth::reject());
        };
        let mut info = entry
            .peer_info(user, fingerprint(key.public_key))
            .connection_id(self.conn_id);
        info.remote_addr = self.remote;
        let tunnels = crate::tunnel::serve::KeyTunnels::of(entry);
        let pty_allowed = {
            let has = |o: &str| entry.options.contains_key(o);
            !has("no-pty") && (!has("restrict") || has("pty"))
        };
        self.tunnels = Some(tunnels);
        self.pty_allowed = pty_allowed;
        self.peer = Some(Peer::new(info));
        self.authed.store(true, Ordering::Release);
        self.pending = None;
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.peer.is_some() {
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
        let (Some(peer), Some(tunnels)) = (&self.peer, &self.tunnels) else {
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        if let Some(why) =
            tunnels.refusal(&self.shared.permit_open, host_to_connect, port_to_connect)
        {
            tracing::warn!(
                fingerprint = %peer.fingerprint(),
                user = %peer.user(),
                target = %format!("{host_to_connect}:{port_to_connect}"),
                "tunnel refused: {why}"
            );
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        tracing::debug!(fingerprint = %peer.fingerprint(), target = %format!("{host_to_connect}:{port_to_connect}"), "tunnel opened");
        tokio::spawn(crate::transport::pipe::join(
            channel,
            reply,
            host_to_connect.to_owned(),
            port_to_connect,
        ));
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let (Some(peer), Some(tunnels)) = (&self.peer, &self.tunnels) else {
            return Ok(false);
        };
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
                tracing::warn!(listen = %format!("{host}:{requested}"), error = %e, "remote tunnel: cannot listen");
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
            .insert((address.to_owned(), actual), AbortOnDrop(task));
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
        session.channel_success(channel)?;
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let mut cfg = ConnectionConfig::new(Role::Acceptor).extension(peer.clone());
            cfg.service = shared.router.clone().map(crate::connection::Served::new);
            cfg.limits = shared.limits;
            let conn = match Connection::start(ch.into_stream(), cfg).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "rrssh handshake failed");
                    return;
                }
            };
            let _slot = match KeySlot::take(&shared, peer.fingerprint()) {
                Ok(slot) => slot,
                Err(held) => {
                    tracing::warn!(
                        fingerprint = %peer.fingerprint(),
                        user = %peer.user(),
                        limit = shared.max_per_key,
                        "too many connections for one key; refused"
                    );
                    conn.close_with(
                        goaway::LIMIT,
                        &format!(
                            "too many connections for key {} ({held} open, limit {})",
                            peer.fingerprint(),
                            shared.max_per_key
                        ),
                    );
                    return;
                }
            };
            let id = shared.next_conn.fetch_add(1, Ordering::Relaxed) | (1 << 63);
            let name = conn.peer_hello().service.clone();
            match shared.registry.register(id, name, peer, conn.clone()) {
                Ok(()) => {
                    let reason = conn.closed().await;
                    shared.registry.unregister(id, reason);
                }
                Err(msg) => conn.close(&msg),
            }
        });
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(data).into_owned();
        if self.start_terminal(channel, Some(command), session) {
            session.channel_success(channel)?;
        } else {
            session.channel_failure(channel)?;
        }
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.start_terminal(channel, None, session) {
            session.channel_success(channel)?;
        } else {
            session.channel_failure(channel)?;
        }
        Ok(())
    }

    #[cfg(feature = "terminal")]
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
        if self.shared.terminal.is_some()
            && self.pty_allowed
            && self.channels.contains_key(&channel)
        {
            self.ptys.insert(
                channel,
                crate::terminal::PtyRequest {
                    term: term.to_owned(),
                    cols: u16::try_from(col_width).unwrap_or(u16::MAX),
                    rows: u16::try_from(row_height).unwrap_or(u16::MAX),
                },
            );
            session.channel_success(channel)?;
        } else {
            session.channel_failure(channel)?;
        }
        Ok(())
    }

    #[cfg(feature = "terminal")]
    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        col_width: u32,
        row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(tx) = self.resizers.get(&channel) {
            let _ = tx.send((
                u16::try_from(col_width).unwrap_or(u16::MAX),
                u16::try_from(row_height).unwrap_or(u16::MAX),
            ));
        }
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        #[cfg(feature = "terminal")]
        {
            self.ptys.remove(&channel);
            self.resizers.remove(&channel);
        }
        Ok(())
    }
}
