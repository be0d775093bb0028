//! rrssh's errors as Python exceptions. The classes are defined in Python (`rrssh/_errors.py`,
//! so that `Timeout` is also a `TimeoutError` and `Unavailable` a `ConnectionError`) and handed
//! to the module when it is imported.

use std::sync::OnceLock;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use rrssh::client::Error as CallError;
use rrssh::transport::ConnectError;

/// The exception classes, registered by `rrssh/__init__.py` as a dict by name.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub(crate) struct Classes {
    #[pyo3(item("Error"))]
    error: Py<PyAny>,
    #[pyo3(item("StatusError"))]
    status: Py<PyAny>,
    #[pyo3(item("Unavailable"))]
    unavailable: Py<PyAny>,
    #[pyo3(item("Timeout"))]
    timeout: Py<PyAny>,
    #[pyo3(item("HostKeyError"))]
    host_key: Py<PyAny>,
    #[pyo3(item("AuthError"))]
    auth: Py<PyAny>,
    #[pyo3(item("TerminalRefused"))]
    terminal_refused: Py<PyAny>,
    #[pyo3(item("TerminalClosed"))]
    terminal_closed: Py<PyAny>,
}

static CLASSES: OnceLock<Classes> = OnceLock::new();

/// `_rrssh._register_errors({"Error": …, "StatusError": …, …})`.
#[pyfunction]
pub(crate) fn _register_errors(classes: Classes) {
    let _ = CLASSES.set(classes);
}

/// An error on its way to Python.
#[derive(Debug)]
pub(crate) enum Error {
    /// The peer answered with an error status (`StatusError`).
    Status {
        status: u16,
        message: String,
        /// The error JSON's `detail`, as JSON text.
        detail: Option<String>,
    },
    /// No connection, or it was lost (`Unavailable`).
    Unavailable(String),
    /// The deadline passed (`Timeout`).
    Timeout(String),
    /// The server's host key was refused (`HostKeyError`).
    HostKey(String),
    /// The server refused the login (`AuthError`).
    Auth(String),
    /// The server refused the terminal (`TerminalRefused`).
    TerminalRefused(String),
    /// The terminal session is over (`TerminalClosed`).
    TerminalClosed(String),
    /// Anything else rrssh reports (`rrssh.Error`).
    Other(String),
    /// A bad argument (`ValueError`).
    Value(String),
}

impl Error {
    pub(crate) fn into_pyerr(self, py: Python<'_>) -> PyErr {
        let Some(c) = CLASSES.get() else {
            return PyRuntimeError::new_err(format!("{self:?}"));
        };
        let made = match self {
            Error::Status {
                status,
                message,
                detail,
            } => {
                let detail = match detail {
                    Some(text) => py
                        .import("json")
                        .and_then(|j| j.call_method1("loads", (text,)))
                        .map(Bound::unbind)
                        .unwrap_or_else(|_| py.None()),
                    None => py.None(),
                };
                c.status.call1(py, (status, message, detail))
            }
            Error::Unavailable(m) => c.unavailable.call1(py, (m,)),
            Error::Timeout(m) => c.timeout.call1(py, (m,)),
            Error::HostKey(m) => c.host_key.call1(py, (m,)),
            Error::Auth(m) => c.auth.call1(py, (m,)),
            Error::TerminalRefused(m) => c.terminal_refused.call1(py, (m,)),
            Error::TerminalClosed(m) => c.terminal_closed.call1(py, (m,)),
            Error::Other(m) => c.error.call1(py, (m,)),
            Error::Value(m) => return PyValueError::new_err(m),
        };
        match made {
            Ok(v) => PyErr::from_value(v.into_bound(py)),
            Err(e) => e,
        }
    }
}

impl From<CallError> for Error {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Status { status, body } => Error::Status {
                status: status.as_u16(),
                message: body.message,
                detail: body.detail.map(|d| d.to_string()),
            },
            CallError::Unavailable(m) => Error::Unavailable(m),
            CallError::Timeout => Error::Timeout("the call's deadline passed".into()),
            other => Error::Other(other.to_string()),
        }
    }
}

impl From<ConnectError> for Error {
    fn from(e: ConnectError) -> Self {
        let text = e.to_string();
        match e {
            ConnectError::HostKey(_) | ConnectError::NoHostKeyPolicy => Error::HostKey(text),
            ConnectError::AuthRejected { .. }
            | ConnectError::NoIdentity
            | ConnectError::Agent(_) => Error::Auth(text),
            ConnectError::Timeout(_) => Error::Timeout(text),
            ConnectError::BadTarget(_) => Error::Value(text),
            _ => Error::Unavailable(text),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Unavailable(e.to_string())
    }
}

impl Error {
    /// A terminal's error, by kind.
    pub(crate) fn terminal(e: rrssh::terminal::TerminalError) -> Self {
        use rrssh::terminal::TerminalError as T;
        let text = e.to_string();
        match e {
            T::Closed | T::Idle(_) => Error::TerminalClosed(text),
            T::Ssh(_) => Error::Unavailable(text),
            _ => Error::TerminalRefused(text),
        }
    }
}

impl From<rrssh::terminal::TerminalError> for Error {
    fn from(e: rrssh::terminal::TerminalError) -> Self {
        Error::terminal(e)
    }
}
