//! Clients: connecting (rrssh's own SSH client, or a spawned `ssh`), calls, streams, terminals
//! and local tunnels.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use rrssh::client::ClientStream;

use crate::bridge::{self, Run, awaitable};
use crate::connection::{Conn, Handle, peer_calls_only};
use crate::errors::Error;
use crate::login::{Login, builder};
use crate::stream::ItemStream;
use crate::terminal::Terminal;
use crate::tunnels::{Forward, RemoteTunnel};

/// `_rrssh.connect(login, reconnect) -> Client`: connects once; with `reconnect`, the
/// connection is then kept up (re-dialed with backoff whenever it is lost).
#[pyfunction]
#[pyo3(signature = (login, reconnect=false))]
pub(crate) fn connect(py: Python<'_>, login: Login, reconnect: bool) -> PyResult<Bound<'_, PyAny>> {
    let b = builder(login).map_err(|e| e.into_pyerr(py))?;
    awaitable(
        py,
        Run::OnRuntime,
        async move {
            Ok(if reconnect {
                Client::persistent(b.connect_then_persist().await?)
            } else {
                Client::once(b.connect().await?)
            })
        },
        |py, c| Ok(Py::new(py, c)?.into_any()),
    )
}

/// `_rrssh.over_ssh(target, extra) -> Client`: rrssh over a spawned OpenSSH `ssh` running the
/// `rrssh` subsystem (`ssh [-p PORT] -o BatchMode=yes EXTRA… -s -- [user@]host rrssh`), which
/// reads `~/.ssh/config`, the agent and `known_hosts` as ssh does.
#[pyfunction]
pub(crate) fn over_ssh(
    py: Python<'_>,
    target: String,
    extra: Vec<String>,
) -> PyResult<Bound<'_, PyAny>> {
    let host = target.rsplit_once('@').map_or(target.as_str(), |(_, h)| h);
    if target.is_empty() || target.starts_with('-') || host.is_empty() || host.starts_with('-') {
        return Err(
            Error::Value(format!("bad target {target:?}: [user@]host[:port]")).into_pyerr(py),
        );
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let argv = rrssh::transport::ssh_command(&target, &extra);
    awaitable(
        py,
        Run::OnRuntime,
        async move { Ok(Client::once(rrssh::Client::over_command(argv).await?)) },
        |py, c| Ok(Py::new(py, c)?.into_any()),
    )
}

/// A connection to an SSH server: an rrssh server or hub, or (plain) any SSH server.
#[pyclass(frozen, module = "rrssh._rrssh")]
pub(crate) struct Client(Conn);

/// What Python passes for one call.
fn request(
    method: &str,
    target: &str,
    body: Option<Vec<u8>>,
    content_type: Option<&str>,
    headers: Vec<(String, String)>,
    timeout: Option<f64>,
) -> Result<rrssh::Request, Error> {
    let method = http::Method::from_bytes(method.as_bytes())
        .map_err(|_| Error::Value(format!("invalid method {method:?}")))?;
    let mut req = http::Request::builder()
        .method(method)
        .uri(target)
        .body(match body {
            Some(b) => rrssh::Body::from_bytes(b),
            None => rrssh::Body::empty(),
        })
        .map_err(|e| Error::Value(format!("invalid path {target:?}: {e}")))?;
    let h = req.headers_mut();
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| Error::Value(format!("invalid header name {k:?}")))?;
        let value = HeaderValue::from_str(&v)
            .map_err(|_| Error::Value(format!("invalid value for header {k}")))?;
        h.append(name, value);
    }
    if let Some(ct) = content_type {
        let v = HeaderValue::from_str(ct)
            .map_err(|_| Error::Value(format!("invalid content type {ct:?}")))?;
        h.insert(CONTENT_TYPE, v);
    }
    if let Some(t) = timeout {
        if !(t.is_finite() && t > 0.0) {
            return Err(Error::Value(format!(
                "timeout must be a positive number of seconds, not {t}"
            )));
        }
        let budget = rrssh::proto::Budget::from_millis((t * 1000.0).ceil() as u64);
        h.insert(rrssh::proto::headers::TIMEOUT, budget.to_header_value());
    }
    Ok(req)
}

/// A call's error; the peer's 504 reset of a call with a deadline is that deadline passing.
fn call_error(e: rrssh::client::Error, deadline: bool) -> Error {
    match e {
        rrssh::client::Error::Status { status, body }
            if deadline && status == http::StatusCode::GATEWAY_TIMEOUT =>
        {
            Error::Timeout(format!("the call's deadline passed: {}", body.message))
        }
        other => other.into(),
    }
}

/// The largest answer `request` reads into memory (a larger one is a stream's job).
const MAX_ANSWER: usize = 256 * 1024 * 1024;

/// `(status, [(name, value)…], body)`.
type Answer = (u16, Vec<(String, Vec<u8>)>, Bytes);

fn answer(py: Python<'_>, (status, headers, body): Answer) -> PyResult<Py<PyAny>> {
    let list = PyList::empty(py);
    for (k, v) in headers {
        list.append((k, String::from_utf8_lossy(&v).into_owned()))?;
    }
    let t = PyTuple::new(
        py,
        [
            status.into_pyobject(py)?.into_any(),
            list.into_any(),
            PyBytes::new(py, &body).into_any(),
        ],
    )?;
    Ok(t.into_any().unbind())
}

#[pymethods]
impl Client {
    /// `request(method, target, body=None, content_type=None, headers=[], timeout=None,
    /// stream=False)`: `(status, headers, body)` whatever the status; with `stream`, an
    /// `ItemStream` of the answer's NDJSON items (an error status raises `StatusError`).
    #[pyo3(signature = (method, target, body=None, content_type=None, headers=Vec::new(), timeout=None, stream=false))]
    #[expect(
        clippy::too_many_arguments,
        reason = "the Python signature, whose arguments are keywords"
    )]
    fn request<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        target: &str,
        body: Option<Vec<u8>>,
        content_type: Option<&str>,
        headers: Vec<(String, String)>,
        timeout: Option<f64>,
        stream: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let req = request(method, target, body, content_type, headers, timeout)
            .map_err(|e| e.into_pyerr(py))?;
        let client = self.0.handle().map_err(|e| e.into_pyerr(py))?;
        let deadline = timeout.is_some();
        let answer_of = async move { client.call(req).await.map_err(|e| call_error(e, deadline)) };
        if stream {
            return awaitable(
                py,
                Run::OnRuntime,
                async move {
                    let items: ClientStream<Box<serde_json::value::RawValue>> = <rrssh::JsonStream<
                        Box<serde_json::value::RawValue>,
                    > as rrssh::client::FromResponse>::from_response(
                        answer_of.await?
                    )
                    .await?;
                    Ok(ItemStream::new(items))
                },
                |py, s| Ok(Py::new(py, s)?.into_any()),
            );
        }
        awaitable(
            py,
            Run::OnLoop,
            async move {
                let (parts, body) = answer_of.await?.into_parts();
                if deadline && parts.status == http::StatusCode::GATEWAY_TIMEOUT {
                    // The peer gave up at the deadline this call set (after its head was sent,
                    // or before: then `call_error` saw a reset).
                    return Err(Error::Timeout("the call's deadline passed".into()));
                }
                let body = body
                    .collect_limited(MAX_ANSWER)
                    .await
                    .map_err(|e| Error::Unavailable(format!("reading the answer: {e}")))?;
                let headers = parts
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
                    .collect();
                Ok((parts.status.as_u16(), headers, body))
            },
            answer,
        )
    }

    /// `terminal(cols, rows, command=None, term="xterm-256color", idle_timeout=None)`: a
    /// terminal session, hung up after `idle_timeout` seconds without input or output.
    #[pyo3(signature = (cols=80, rows=24, command=None, term="xterm-256color".to_owned(), idle_timeout=None))]
    fn terminal<'py>(
        &self,
        py: Python<'py>,
        cols: u16,
        rows: u16,
        command: Option<String>,
        term: String,
        idle_timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let handle = self.0.handle().map_err(|e| e.into_pyerr(py))?;
        let mut opts = rrssh::terminal::TerminalOptions::new()
            .size(cols, rows)
            .term(term);
        if let Some(c) = command {
            opts = opts.command(c);
        }
        if let Some(idle) = idle_timeout {
            let idle = std::time::Duration::try_from_secs_f64(idle)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    Error::Value(format!("idle_timeout must be seconds > 0, not {idle}"))
                        .into_pyerr(py)
                })?;
            opts = opts.idle_timeout(idle);
        }
        awaitable(
            py,
            Run::OnRuntime,
            async move {
                let client = handle.client().await?;
                Ok(Terminal::new(
                    client.terminal(opts).await.map_err(Error::terminal)?,
                ))
            },
            |py, t| Ok(Py::new(py, t)?.into_any()),
        )
    }

    /// `forward_local(listen, host, port)`: listens on `listen` (`"127.0.0.1:0"`) and carries
    /// each connection to `host:port` as the server sees it (`ssh -L`). On a reconnecting
    /// client the listener outlives reconnections.
    fn forward_local<'py>(
        &self,
        py: Python<'py>,
        listen: String,
        host: String,
        port: u16,
    ) -> PyResult<Bound<'py, PyAny>> {
        let handle = self.0.handle().map_err(|e| e.into_pyerr(py))?;
        awaitable(
            py,
            Run::OnRuntime,
            async move {
                let fwd = match handle {
                    Handle::Once(c) => c.forward_local(listen, &host, port).await?,
                    Handle::Persistent(c) => c.forward_local(listen, &host, port).await?,
                    Handle::Peer(_) => return Err(peer_calls_only()),
                };
                Ok(Forward::new(fwd))
            },
            |py, f| Ok(Py::new(py, f)?.into_any()),
        )
    }

    /// `forward_remote(bind, port, host, target_port)`: the server listens on `bind:port`
    /// (`port` 0: one it picks) and each connection it accepts is carried to
    /// `host:target_port` as this machine sees it (`ssh -R`). On a reconnecting client it is
    /// asked again on every connection (and `port` cannot be 0).
    fn forward_remote<'py>(
        &self,
        py: Python<'py>,
        bind: String,
        port: u16,
        host: String,
        target_port: u16,
    ) -> PyResult<Bound<'py, PyAny>> {
        let handle = self.0.handle().map_err(|e| e.into_pyerr(py))?;
        awaitable(
            py,
            Run::OnRuntime,
            async move {
                let t = match handle {
                    Handle::Once(c) => c.forward_remote(&bind, port, &host, target_port).await,
                    Handle::Persistent(c) => {
                        c.forward_remote(&bind, port, &host, target_port).await
                    }
                    Handle::Peer(_) => return Err(peer_calls_only()),
                };
                Ok(RemoteTunnel::new(
                    t.map_err(|e| Error::Unavailable(e.to_string()))?,
                ))
            },
            |py, f| Ok(Py::new(py, f)?.into_any()),
        )
    }

    /// Waits until connected (at once unless reconnecting), `timeout` seconds at most.
    #[pyo3(signature = (timeout=None))]
    fn connected<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let handle = self.0.handle().map_err(|e| e.into_pyerr(py))?;
        awaitable(
            py,
            Run::OnRuntime,
            async move { handle.wait_connected(timeout).await },
            bridge::none,
        )
    }

    /// The connection's events from now on (`connecting`, `connected`, `disconnected`,
    /// `backing_off`); a client that does not reconnect has none.
    fn connection_events(&self) -> PyResult<crate::connection::ConnectionEvents> {
        Ok(self.0.events())
    }

    /// What this client is connected to.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        self.0.info(py)
    }

    /// Closes the connection (and stops reconnecting).
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let closing = self.0.close();
        awaitable(
            py,
            Run::OnRuntime,
            async move {
                closing.await;
                Ok(())
            },
            bridge::none,
        )
    }

    /// Whether the connection is gone for good (closed, or lost without reconnecting).
    #[getter]
    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    /// Whether a connection is up now.
    #[getter]
    fn is_connected(&self) -> bool {
        self.0.is_connected()
    }
}

impl Client {
    fn once(c: rrssh::Client) -> Self {
        Self(Conn::once(c))
    }

    fn persistent(c: rrssh::ReconnectingClient) -> Self {
        Self(Conn::persistent(c))
    }

    /// A peer of a hub this process serves.
    pub(crate) fn peer(p: rrssh::hub::PeerClient) -> Self {
        Self(Conn::peer(p))
    }
}
