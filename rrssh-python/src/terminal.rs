//! Terminal sessions (`ssh -t`): write, read with a timeout, resize, close.

use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rrssh::terminal::{TerminalInput, TerminalOutput, TerminalSession};
use tokio::sync::Mutex;

use crate::bridge::{self, Run, awaitable};
use crate::errors::Error;

/// What ended a session, once its output did.
#[derive(Debug, Clone, Copy)]
struct Ended {
    status: Option<u32>,
    idle: bool,
}

/// The exit status of a session that ended without one (hung up, killed, its connection
/// lost), as `ssh` exits then.
const NO_STATUS: u32 = 255;

/// A terminal session on the server.
#[pyclass(frozen, module = "rrssh._rrssh")]
pub(crate) struct Terminal {
    input: Arc<TerminalInput>,
    output: Arc<Mutex<TerminalOutput>>,
    ended: Arc<std::sync::Mutex<Option<Ended>>>,
}

impl Terminal {
    pub(crate) fn new(s: TerminalSession) -> Self {
        Self {
            input: Arc::new(s.input),
            output: Arc::new(Mutex::new(s.output)),
            ended: Arc::default(),
        }
    }

    fn ended(&self) -> Option<Ended> {
        *self.ended.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[pymethods]
impl Terminal {
    /// Sends keystrokes.
    fn write<'py>(&self, py: Python<'py>, data: Vec<u8>) -> PyResult<Bound<'py, PyAny>> {
        let input = self.input.clone();
        awaitable(
            py,
            Run::OnRuntime,
            async move { input.write(data).await.map_err(Error::terminal) },
            bridge::none,
        )
    }

    /// What the program printed: waits up to `timeout` seconds for output (forever if `None`),
    /// returns `b""` if none came, and `None` once the session is over.
    #[pyo3(signature = (timeout=None))]
    fn read<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let output = self.output.clone();
        let ended = self.ended.clone();
        let wait = match timeout {
            Some(t) if t.is_finite() && t >= 0.0 => Some(Duration::from_secs_f64(t)),
            Some(t) => {
                return Err(
                    Error::Value(format!("timeout must be seconds ≥ 0, not {t}")).into_pyerr(py),
                );
            }
            None => None,
        };
        awaitable(
            py,
            Run::OnRuntime,
            async move {
                let mut out = output.lock().await;
                let next = match wait {
                    Some(w) => match tokio::time::timeout(w, out.next()).await {
                        Ok(n) => n,
                        Err(_) => return Ok(Some(bytes::Bytes::new())),
                    },
                    None => out.next().await,
                };
                if next.is_none() {
                    let end = Ended {
                        status: out.exit_status(),
                        idle: out.timed_out(),
                    };
                    *ended.lock().unwrap_or_else(|e| e.into_inner()) = Some(end);
                }
                Ok(next)
            },
            |py, b: Option<bytes::Bytes>| {
                Ok(match b {
                    Some(b) => PyBytes::new(py, &b).into_any().unbind(),
                    None => py.None(),
                })
            },
        )
    }

    /// Tells the program the window's new size.
    fn resize<'py>(&self, py: Python<'py>, cols: u16, rows: u16) -> PyResult<Bound<'py, PyAny>> {
        let input = self.input.clone();
        awaitable(
            py,
            Run::OnRuntime,
            async move { input.resize(cols, rows).await.map_err(Error::terminal) },
            bridge::none,
        )
    }

    /// Ends the session.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let input = self.input.clone();
        awaitable(
            py,
            Run::OnRuntime,
            async move {
                let _ = input.close().await;
                Ok(())
            },
            bridge::none,
        )
    }

    /// The program's exit status once the session ended (`read` returned `None`): 255 if it
    /// ended without one (hung up, killed, the connection lost), as `ssh` exits then.
    #[getter]
    fn exit_status(&self) -> Option<u32> {
        self.ended().map(|e| e.status.unwrap_or(NO_STATUS))
    }

    /// Whether the session was hung up for being idle longer than its `idle_timeout`.
    #[getter]
    fn timed_out(&self) -> bool {
        self.ended().is_some_and(|e| e.idle)
    }

    /// Whether the session is still open (its end not yet read, and not closed).
    #[getter]
    fn is_open(&self) -> bool {
        self.ended().is_none() && self.input.is_open()
    }
}
