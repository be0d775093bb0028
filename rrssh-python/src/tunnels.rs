//! Tunnels as Python objects: local (`ssh -L`) and remote (`ssh -R`), open until `close()` or
//! until dropped.

use std::sync::Mutex;

use pyo3::prelude::*;
use rrssh::tunnel::{LocalForward, RemoteTunnel as Remote};

/// A local tunnel (`ssh -L`).
#[pyclass(frozen, module = "rrssh._rrssh")]
pub(crate) struct Forward(Mutex<Option<LocalForward>>);

impl Forward {
    pub(crate) fn new(f: LocalForward) -> Self {
        Self(Mutex::new(Some(f)))
    }

    fn with<T>(&self, f: impl FnOnce(&LocalForward) -> T) -> Option<T> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(f)
    }
}

#[pymethods]
impl Forward {
    /// The local address it listens on, `(host, port)`; `None` once closed.
    #[getter]
    fn address(&self) -> Option<(String, u16)> {
        self.with(|f| (f.local_addr().ip().to_string(), f.local_addr().port()))
    }

    /// Connections carried so far.
    #[getter]
    fn opened(&self) -> u64 {
        self.with(LocalForward::opened).unwrap_or(0)
    }

    /// Connections the server refused to carry.
    #[getter]
    fn refused(&self) -> u64 {
        self.with(LocalForward::refused).unwrap_or(0)
    }

    /// Stops listening (connections already carried go on).
    fn close(&self) {
        let f = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        // Dropped after the lock is released: dropping stops its task.
        drop(f);
    }
}

/// A remote tunnel (`ssh -R`): the server listens on `port`.
#[pyclass(frozen, module = "rrssh._rrssh")]
pub(crate) struct RemoteTunnel(Mutex<Option<Remote>>);

impl RemoteTunnel {
    pub(crate) fn new(t: Remote) -> Self {
        Self(Mutex::new(Some(t)))
    }
}

#[pymethods]
impl RemoteTunnel {
    /// The port the server listens on; `None` once closed.
    #[getter]
    fn port(&self) -> Option<u16> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(Remote::port)
    }

    /// Asks the server to stop listening.
    fn close(&self) {
        let t = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        // Dropped after the lock is released: dropping cancels the forward.
        drop(t);
    }
}
