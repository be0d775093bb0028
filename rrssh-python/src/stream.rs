//! A STREAM call's items, handed to Python in batches: one wake-up of the event loop carries
//! every item that had arrived.

use std::sync::Arc;

use futures_util::{FutureExt, StreamExt};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use rrssh::client::ClientStream;
use serde_json::value::RawValue;
use tokio::sync::Mutex;

use crate::bridge::{Run, awaitable};
use crate::errors::Error;

/// The most items one batch carries.
const BATCH: usize = 4096;

struct State {
    items: Option<ClientStream<Box<RawValue>>>,
    /// An error that came after items already handed over: raised by the next batch.
    failed: Option<Error>,
}

/// The items of a STREAM answer, each as its JSON text.
#[pyclass(frozen, module = "rrssh._rrssh")]
pub(crate) struct ItemStream(Arc<Mutex<State>>);

impl ItemStream {
    pub(crate) fn new(items: ClientStream<Box<RawValue>>) -> Self {
        Self(Arc::new(Mutex::new(State {
            items: Some(items),
            failed: None,
        })))
    }
}

fn batch(py: Python<'_>, items: Option<Vec<Box<RawValue>>>) -> PyResult<Py<PyAny>> {
    let Some(items) = items else {
        return Ok(py.None());
    };
    let list = PyList::empty(py);
    for i in items {
        list.append(PyBytes::new(py, i.get().as_bytes()))?;
    }
    Ok(list.into_any().unbind())
}

#[pymethods]
impl ItemStream {
    /// The next items (a list of JSON texts as bytes), or `None` after the last; raises the
    /// stream's error (`StatusError`, `Timeout`, `Unavailable`) where it happened.
    fn next_batch<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let state = self.0.clone();
        awaitable(
            py,
            Run::OnRuntime,
            async move {
                let mut st = state.lock().await;
                if let Some(e) = st.failed.take() {
                    return Err(e);
                }
                let Some(items) = st.items.as_mut() else {
                    return Ok(None);
                };
                let mut out = Vec::new();
                // A finished stream is taken out and dropped after the lock is released.
                let mut finished = None;
                match items.next().await {
                    None => {
                        finished = st.items.take();
                        drop(st);
                        drop(finished);
                        return Ok(None);
                    }
                    Some(Err(e)) => {
                        finished = st.items.take();
                        drop(st);
                        drop(finished);
                        return Err(e.into());
                    }
                    Some(Ok(v)) => out.push(v),
                }
                while out.len() < BATCH {
                    match items.next().now_or_never() {
                        Some(Some(Ok(v))) => out.push(v),
                        Some(Some(Err(e))) => {
                            st.failed = Some(e.into());
                            finished = st.items.take();
                            break;
                        }
                        Some(None) => {
                            finished = st.items.take();
                            break;
                        }
                        None => break,
                    }
                }
                drop(st);
                drop(finished);
                Ok(Some(out))
            },
            batch,
        )
    }

    /// Stops reading: the call is cancelled on the wire.
    fn close(&self) {
        let items = match self.0.try_lock() {
            Ok(mut st) => st.items.take(),
            Err(_) => None,
        };
        // Dropped after the lock is released: dropping cancels the call.
        drop(items);
    }
}
