//! Where a Python `App` is served: as an SSH server (forward; also a hub with `relay`), or as a
//! reverse service that dials a hub and reconnects when the connection drops.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rrssh::hub::HubEvent;
use rrssh::keys::AuthorizedKeys;
use tokio::sync::Mutex as AsyncMutex;

use crate::bridge::{self, Run, awaitable};
use crate::errors::Error;
use crate::login::{Login, builder};
use crate::serve::Service;

/// `_rrssh.serve(service, listen, host_key, authorized_keys, owner, relay)`: a listening
/// server. The keys of `authorized_keys` without `rrssh-users` log in as `owner`, as the keys
/// in `~owner/.ssh/authorized_keys` do under sshd.
///
/// `permit_open` and `permit_listen` are `host:port` patterns (comma-separated) for tunnels;
/// `terminal` is a shell program for terminal sessions, to the keys granted one (`pty` or the
/// scope `terminal`) unless `terminal_for_every_key`.
#[pyfunction]
#[pyo3(signature = (service, listen, host_key, authorized_keys, owner, relay=false, permit_open=None, permit_listen=None, terminal=None, terminal_for_every_key=false))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn serve<'py>(
    py: Python<'py>,
    service: Option<&Service>,
    listen: String,
    host_key: String,
    authorized_keys: String,
    owner: String,
    relay: bool,
    permit_open: Option<String>,
    permit_listen: Option<String>,
    terminal: Option<String>,
    terminal_for_every_key: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let router = service.map(|s| s.0.clone());
    let pattern =
        |what: &str, list: Option<String>| -> PyResult<Option<rrssh::tunnel::PermitOpen>> {
            list.map(|l| {
                rrssh::tunnel::PermitOpen::parse(&l)
                    .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("{what}: {e}")))
            })
            .transpose()
        };
    let permit_open = pattern("permit_open", permit_open)?;
    let permit_listen = pattern("permit_listen", permit_listen)?;
    awaitable(
        py,
        Run::OnRuntime,
        async move {
            let key = rrssh::keys::load_or_generate_ed25519(&host_key, "rrssh host key")
                .map_err(|e| Error::Value(format!("host key {host_key}: {e}")))?;
            let keys = AuthorizedKeys::load(&authorized_keys)
                .map_err(|e| Error::Value(format!("authorized_keys {authorized_keys}: {e}")))?
                .owned_by(owner);
            let mut server = rrssh::Server::new()
                .host_key(key)
                .authorized_keys(keys)
                .relay(relay);
            if let Some(r) = router {
                server = server.router(r);
            }
            if let Some(p) = permit_open {
                server = server.permit_open(p);
            }
            if let Some(p) = permit_listen {
                server = server.permit_listen(p);
            }
            if let Some(shell) = terminal {
                let mut t = rrssh::terminal::Terminal::shell(shell);
                if terminal_for_every_key {
                    t = t.for_every_key();
                }
                server = server.terminal(t);
            }
            let hub = server
                .bind(listen.as_str())
                .await
                .map_err(|e| Error::Unavailable(format!("cannot serve on {listen}: {e}")))?;
            Ok(Server(Mutex::new(Some(hub))))
        },
        |py, s| Ok(Py::new(py, s)?.into_any()),
    )
}

/// A running server.
#[pyclass(frozen, module = "rrssh._rrssh")]
pub(crate) struct Server(Mutex<Option<rrssh::Hub>>);

#[pymethods]
impl Server {
    /// `(host, port)` it listens on.
    #[getter]
    fn address(&self) -> Option<(String, u16)> {
        let h = self.0.lock().unwrap_or_else(|e| e.into_inner());
        h.as_ref()
            .map(|h| (h.local_addr().ip().to_string(), h.local_addr().port()))
    }

    /// The names of the services connected to it.
    fn peers(&self) -> Vec<String> {
        let h = self.0.lock().unwrap_or_else(|e| e.into_inner());
        h.as_ref().map_or_else(Vec::new, |h| {
            h.peers().into_iter().filter_map(|p| p.name).collect()
        })
    }

    /// Connection events: services connecting, leaving, refused; with `callers`, also the
    /// connections that serve no named service (callers).
    #[pyo3(signature = (callers=false))]
    fn events(&self, callers: bool) -> PyResult<Events> {
        let h = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let hub = h
            .as_ref()
            .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("the server is closed"))?;
        let events = hub.events().filter(move |ev| {
            std::future::ready(
                callers
                    || !matches!(
                        ev,
                        HubEvent::Connected { name: None, .. }
                            | HubEvent::Disconnected { name: None, .. }
                    ),
            )
        });
        Ok(Events(Arc::new(AsyncMutex::new(Box::pin(events)))))
    }

    /// A client for the service `name` connected to this hub (calls go straight to it, as
    /// `hub://…/name` calls do, without a connection of this process's own).
    fn peer(&self, name: &str) -> PyResult<crate::client::Client> {
        let h = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let hub = h
            .as_ref()
            .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("the server is closed"))?;
        Ok(crate::client::Client::peer(hub.peer(name)))
    }

    /// Stops accepting, lets calls in flight finish (up to `grace` seconds), then closes.
    #[pyo3(signature = (grace=5.0))]
    fn close<'py>(&self, py: Python<'py>, grace: f64) -> PyResult<Bound<'py, PyAny>> {
        let hub = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        awaitable(
            py,
            Run::OnRuntime,
            async move {
                if let Some(h) = hub {
                    h.shutdown(Duration::from_secs_f64(grace.max(0.0))).await;
                }
                Ok(())
            },
            bridge::none,
        )
    }
}

type EventStream = std::pin::Pin<Box<dyn futures_util::Stream<Item = HubEvent> + Send>>;

/// A hub's connection events, one at a time.
#[pyclass(frozen, module = "rrssh._rrssh")]
pub(crate) struct Events(Arc<AsyncMutex<EventStream>>);

fn event_dict(py: Python<'_>, ev: Option<HubEvent>) -> PyResult<Py<PyAny>> {
    let Some(ev) = ev else {
        return Ok(py.None());
    };
    let d = PyDict::new(py);
    let (kind, name, peer, reason) = match ev {
        HubEvent::Connected { name, peer } => ("connected", name, peer, None),
        HubEvent::Disconnected { name, peer, reason } => ("disconnected", name, peer, Some(reason)),
        HubEvent::Refused { name, peer } => ("refused", Some(name), peer, None),
        _ => (
            "other",
            None,
            rrssh::Peer::new(rrssh::extract::PeerInfo::new("", "")),
            None,
        ),
    };
    d.set_item("event", kind)?;
    d.set_item("name", name)?;
    d.set_item("user", peer.user())?;
    d.set_item("fingerprint", peer.fingerprint())?;
    d.set_item("reason", reason)?;
    Ok(d.into_any().unbind())
}

#[pymethods]
impl Events {
    /// The next event, or `None` once the server is closed.
    fn next<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = self.0.clone();
        awaitable(
            py,
            Run::OnRuntime,
            async move { Ok(s.lock().await.next().await) },
            event_dict,
        )
    }
}

/// `_rrssh.serve_reverse(service, login, name)`: dials the hub and serves the routes there
/// under `name`, reconnecting (with backoff) whenever the connection drops.
#[pyfunction]
pub(crate) fn serve_reverse(
    py: Python<'_>,
    service: &Service,
    login: Login,
    name: String,
) -> PyResult<Reverse> {
    let b = builder(login)
        .map_err(|e| e.into_pyerr(py))?
        .serve(service.0.clone())
        .service_name(name);
    // Its supervisor is a task on the runtime.
    let _runtime = bridge::runtime().enter();
    let client = b.connect_persistent();
    Ok(Reverse(Mutex::new(Some(client))))
}

/// A reverse service, connected to its hub whenever it can be.
#[pyclass(frozen, module = "rrssh._rrssh")]
pub(crate) struct Reverse(Mutex<Option<rrssh::ReconnectingClient>>);

impl Reverse {
    fn client(&self) -> Option<rrssh::ReconnectingClient> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[pymethods]
impl Reverse {
    /// Whether it is connected now.
    #[getter]
    fn is_connected(&self) -> bool {
        self.client().is_some_and(|c| c.is_connected())
    }

    /// Waits until it is connected (`timeout` seconds at most; raises `Timeout`).
    #[pyo3(signature = (timeout=None))]
    fn connected<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.client();
        awaitable(
            py,
            Run::OnRuntime,
            async move {
                let c = c.ok_or_else(|| Error::Unavailable("the service was closed".into()))?;
                match timeout {
                    Some(t) => {
                        tokio::time::timeout(Duration::from_secs_f64(t.max(0.0)), c.connected())
                            .await
                            .map(drop)
                            .map_err(|_| Error::Timeout("not connected to the hub in time".into()))
                    }
                    None => {
                        c.connected().await;
                        Ok(())
                    }
                }
            },
            bridge::none,
        )
    }

    /// Disconnects and stops reconnecting.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        awaitable(
            py,
            Run::OnRuntime,
            async move {
                // The supervisor goes first (dropping the last handle stops it), so that closing
                // the connection does not start another.
                let current = c.as_ref().and_then(rrssh::ReconnectingClient::current);
                drop(c);
                if let Some(cur) = current {
                    cur.close().await;
                }
                Ok(())
            },
            bridge::none,
        )
    }
}
