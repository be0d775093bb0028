//! A Python client's connection: one (`rrssh.connect`) or kept up (`reconnect=True`), with the
//! reconnecting one's events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use rrssh::ReconnectingClient;
use rrssh::client::Call;
use rrssh::hub::PeerClient;
use rrssh::transport::ConnectionEvent;
use tokio::sync::Mutex as AsyncMutex;
use tokio::sync::broadcast;

use crate::bridge::{Run, awaitable};
use crate::errors::Error;

/// How long a terminal waits for a reconnecting client's next connection.
const TERMINAL_WAIT: Duration = Duration::from_secs(10);

/// A hub's peer, as this process's `Server.peer(name)` gives it, has no SSH connection of
/// its own.
pub(crate) fn peer_calls_only() -> Error {
    Error::Unavailable(
        "a peer of this process's hub takes calls only (no terminals or tunnels)".into(),
    )
}

/// The connection a Python `Client` holds.
pub(crate) enum Conn {
    Once(rrssh::Client),
    /// `None` once closed: the supervisor stops with the last handle.
    Persistent(Mutex<Option<ReconnectingClient>>),
    /// A peer of a hub this process serves: calls only, no SSH of its own.
    Peer(PeerClient),
}

/// A clone of the connection for one operation.
#[derive(Clone)]
pub(crate) enum Handle {
    Once(rrssh::Client),
    Persistent(ReconnectingClient),
    Peer(PeerClient),
}

impl Conn {
    pub(crate) fn once(c: rrssh::Client) -> Self {
        Self::Once(c)
    }

    pub(crate) fn persistent(c: ReconnectingClient) -> Self {
        Self::Persistent(Mutex::new(Some(c)))
    }

    pub(crate) fn peer(p: PeerClient) -> Self {
        Self::Peer(p)
    }

    fn reconnecting(&self) -> Option<ReconnectingClient> {
        match self {
            Self::Once(_) | Self::Peer(_) => None,
            Self::Persistent(m) => m.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    pub(crate) fn handle(&self) -> Result<Handle, Error> {
        match self {
            Self::Once(c) => Ok(Handle::Once(c.clone())),
            Self::Peer(p) => Ok(Handle::Peer(p.clone())),
            Self::Persistent(_) => self
                .reconnecting()
                .map(Handle::Persistent)
                .ok_or_else(|| Error::Unavailable("the client was closed".into())),
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        match self {
            Self::Once(c) => c.is_closed(),
            Self::Peer(_) => false,
            Self::Persistent(_) => self.reconnecting().is_none(),
        }
    }

    pub(crate) fn is_connected(&self) -> bool {
        match self {
            Self::Once(c) => !c.is_closed(),
            Self::Peer(p) => p.is_connected(),
            Self::Persistent(_) => self.reconnecting().is_some_and(|c| c.is_connected()),
        }
    }

    /// Closing: stops reconnecting at once; the returned future closes the connection.
    pub(crate) fn close(&self) -> impl Future<Output = ()> + Send + 'static {
        let (once, persistent) = match self {
            Self::Once(c) => (Some(c.clone()), None),
            Self::Peer(_) => (None, None),
            Self::Persistent(m) => (None, m.lock().unwrap_or_else(|e| e.into_inner()).take()),
        };
        async move {
            // The supervisor goes first (dropping the last handle stops it), so that closing
            // the connection does not start another.
            let current = persistent.as_ref().and_then(ReconnectingClient::current);
            drop(persistent);
            if let Some(c) = once.or(current) {
                c.close().await;
            }
        }
    }

    pub(crate) fn events(&self) -> ConnectionEvents {
        ConnectionEvents(
            self.reconnecting()
                .map(|c| Arc::new(AsyncMutex::new(c.events()))),
        )
    }

    pub(crate) fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let current = match self {
            Self::Once(c) => Some(c.clone()),
            Self::Peer(_) => None,
            Self::Persistent(_) => self.reconnecting().and_then(|c| c.current()),
        };
        d.set_item("connected", self.is_connected())?;
        d.set_item("reconnecting", matches!(self, Self::Persistent(_)))?;
        d.set_item("api", current.as_ref().map(rrssh::Client::has_api))?;
        d.set_item("closed", self.is_closed())?;
        Ok(d)
    }
}

impl Handle {
    pub(crate) async fn call(
        &self,
        req: rrssh::Request,
    ) -> Result<rrssh::Response, rrssh::client::Error> {
        match self {
            Self::Once(c) => c.call(req).await,
            Self::Persistent(c) => c.call(req).await,
            Self::Peer(p) => p.call(req).await,
        }
    }

    /// The connection up now (a reconnecting client waits a while for one).
    pub(crate) async fn client(&self) -> Result<rrssh::Client, Error> {
        match self {
            Self::Once(c) => Ok(c.clone()),
            Self::Peer(_) => Err(peer_calls_only()),
            Self::Persistent(c) => tokio::time::timeout(TERMINAL_WAIT, c.connected())
                .await
                .map_err(|_| Error::Unavailable("not connected (reconnecting)".into())),
        }
    }

    pub(crate) async fn wait_connected(&self, timeout: Option<f64>) -> Result<(), Error> {
        let Self::Persistent(c) = self else {
            return Ok(());
        };
        match timeout {
            Some(t) => tokio::time::timeout(Duration::from_secs_f64(t.max(0.0)), c.connected())
                .await
                .map(drop)
                .map_err(|_| Error::Timeout("not connected in time".into())),
            None => {
                c.connected().await;
                Ok(())
            }
        }
    }
}

/// A reconnecting client's connection events, one at a time (none for a client that does not
/// reconnect).
#[pyclass(frozen, module = "rrssh._rrssh")]
pub(crate) struct ConnectionEvents(Option<Arc<AsyncMutex<broadcast::Receiver<ConnectionEvent>>>>);

fn event_dict(py: Python<'_>, ev: Option<ConnectionEvent>) -> PyResult<Py<PyAny>> {
    let Some(ev) = ev else {
        return Ok(py.None());
    };
    let d = PyDict::new(py);
    match ev {
        ConnectionEvent::Connecting { attempt } => {
            d.set_item("event", "connecting")?;
            d.set_item("attempt", attempt)?;
        }
        ConnectionEvent::Connected => d.set_item("event", "connected")?,
        ConnectionEvent::Disconnected { reason } => {
            d.set_item("event", "disconnected")?;
            d.set_item("reason", reason)?;
        }
        ConnectionEvent::BackingOff { until } => {
            d.set_item("event", "backing_off")?;
            let left = until.saturating_duration_since(std::time::Instant::now());
            d.set_item("delay", left.as_secs_f64())?;
        }
        _ => d.set_item("event", "other")?,
    }
    Ok(d.into_any().unbind())
}

#[pymethods]
impl ConnectionEvents {
    /// The next event, or `None` once the client is closed (or for a client that does not
    /// reconnect). Events missed by a reader that fell 64 behind are skipped.
    fn next<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let rx = self.0.clone();
        awaitable(
            py,
            Run::OnRuntime,
            async move {
                let Some(rx) = rx else { return Ok(None) };
                let mut rx = rx.lock().await;
                loop {
                    match rx.recv().await {
                        Ok(ev) => return Ok(Some(ev)),
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return Ok(None),
                    }
                }
            },
            event_dict,
        )
    }
}
