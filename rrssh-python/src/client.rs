//! Clients: connecting (rrssh's own SSH client, or a spawned `ssh`), calls, streams, terminals
//! and local tunnels.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use rrssh::client::{Call, ClientStream};
use rrssh::keys::HostKeyPolicy;

use crate::bridge::{self, Run, awaitable};
use crate::errors::Error;
use crate::stream::ItemStream;
use crate::terminal::Terminal;

/// How to log in and check the server, as `rrssh.connect` parsed it.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub(crate) struct Login {
    host: String,
    port: u16,
    user: String,
    identity: Option<String>,
    known_hosts: Option<String>,
    accept_new: bool,
    host_key: Option<String>,
    password: Option<String>,
    agent: bool,
    timeout: f64,
}

fn key_file(path: &str) -> Result<rrssh::keys::PrivateKey, Error> {
    rrssh::keys::load_private_key(path, None)
        .map_err(|e| Error::Auth(format!("cannot read the key {path}: {e}")))
}

pub(crate) fn builder(login: Login) -> Result<rrssh::transport::ClientBuilder, Error> {
    let mut b = rrssh::Client::builder(format!("{}:{}", login.host, login.port)).user(login.user);
    if let Some(path) = &login.identity {
        b = b.identity(key_file(path)?);
    }
    if login.agent {
        b = b.agent();
    }
    if let Some(p) = login.password {
        b = b.password(p);
    }
    let policy = match (login.host_key, login.known_hosts) {
        (Some(k), _) => HostKeyPolicy::Pinned(
            rrssh::keys::PublicKey::from_openssh(k.trim())
                .map_err(|e| Error::Value(format!("host_key is not an OpenSSH public key: {e}")))?,
        ),
        (None, Some(file)) if login.accept_new => HostKeyPolicy::AcceptNew(file.into()),
        (None, Some(file)) => HostKeyPolicy::Strict(file.into()),
        (None, None) => {
            return Err(Error::Value(
                "no way to check the server: give known_hosts= or host_key=".into(),
            ));
        }
    };
    Ok(b.host_keys(policy)
        .connect_timeout(Duration::from_secs_f64(login.timeout.max(0.001))))
}

/// `_rrssh.connect(login) -> Client`.
#[pyfunction]
pub(crate) fn connect(py: Python<'_>, login: Login) -> PyResult<Bound<'_, PyAny>> {
    let b = builder(login).map_err(|e| e.into_pyerr(py))?;
    awaitable(
        py,
        Run::OnRuntime,
        async move { Ok(Client(b.connect().await?)) },
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
        async move { Ok(Client(rrssh::Client::over_command(argv).await?)) },
        |py, c| Ok(Py::new(py, c)?.into_any()),
    )
}

/// A connection to an rrssh server (or hub).
#[pyclass(frozen, module = "rrssh._rrssh")]
pub(crate) struct Client(pub(crate) rrssh::Client);

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
        let client = self.0.clone();
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

    /// `terminal(cols, rows, command=None, term="xterm-256color")`: a terminal session.
    #[pyo3(signature = (cols=80, rows=24, command=None, term="xterm-256color".to_owned()))]
    fn terminal<'py>(
        &self,
        py: Python<'py>,
        cols: u16,
        rows: u16,
        command: Option<String>,
        term: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.0.clone();
        let mut opts = rrssh::terminal::TerminalOptions::new()
            .size(cols, rows)
            .term(term);
        if let Some(c) = command {
            opts = opts.command(c);
        }
        awaitable(
            py,
            Run::OnRuntime,
            async move { Ok(Terminal::new(client.terminal(opts).await?)) },
            |py, t| Ok(Py::new(py, t)?.into_any()),
        )
    }

    /// `forward_local(listen, host, port)`: listens on `listen` (`"127.0.0.1:0"`) and carries
    /// each connection to `host:port` as the server sees it (`ssh -L`).
    fn forward_local<'py>(
        &self,
        py: Python<'py>,
        listen: String,
        host: String,
        port: u16,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.0.clone();
        awaitable(
            py,
            Run::OnRuntime,
            async move {
                let fwd = client.forward_local(listen, &host, port).await?;
                Ok(Forward(std::sync::Mutex::new(Some(fwd))))
            },
            |py, f| Ok(Py::new(py, f)?.into_any()),
        )
    }

    /// Closes the connection.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.0.clone();
        awaitable(
            py,
            Run::OnRuntime,
            async move {
                client.close().await;
                Ok(())
            },
            bridge::none,
        )
    }

    /// Whether the connection is gone.
    #[getter]
    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

/// A local tunnel (`ssh -L`), open until `close()` or until dropped.
#[pyclass(frozen, module = "rrssh._rrssh")]
pub(crate) struct Forward(std::sync::Mutex<Option<rrssh::tunnel::LocalForward>>);

#[pymethods]
impl Forward {
    /// The local address it listens on, `(host, port)`.
    #[getter]
    fn address(&self) -> Option<(String, u16)> {
        let f = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f.as_ref()
            .map(|f| (f.local_addr().ip().to_string(), f.local_addr().port()))
    }

    /// Connections carried so far.
    #[getter]
    fn opened(&self) -> u64 {
        let f = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f.as_ref().map_or(0, |f| f.opened())
    }

    /// Stops listening (connections already carried go on).
    fn close(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}
