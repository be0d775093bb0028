//! The tokio runtime the bindings run on, and the bridge between its futures and asyncio.
//!
//! A Rust future becomes an `asyncio.Future` of the running loop. Results are not handed over
//! one at a time: they go into the loop's inbox, and the loop is woken through a socket it
//! watches (`loop.add_reader`) only when the inbox was empty. A burst of answers costs one
//! wake-up; no tokio thread ever waits for the GIL; the results become Python objects on the
//! loop's thread, which holds the GIL anyway. Cancelling the asyncio future (the task awaiting
//! it was cancelled) drops the Rust future, which cancels a call on the wire.

use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Wake, Waker};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use tokio::runtime::Runtime;
use tokio::task::AbortHandle;

use crate::errors::Error;

/// The bindings' runtime: two worker threads, started on first use.
pub(crate) fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rrssh")
            .enable_all()
            .build()
            .expect("the rrssh runtime could not start")
    })
}

/// Turns a value into a Python object, on the loop's thread.
pub(crate) type Make = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

/// What the loop runs when it drains its inbox.
pub(crate) enum Job {
    /// Resolve an asyncio future (unless it was cancelled meanwhile).
    Resolve {
        fut: Py<PyAny>,
        result: Result<Make, Error>,
    },
    /// Run Python code on the loop (a served call's handler starts here).
    Run(Box<dyn FnOnce(Python<'_>) + Send>),
    /// Poll a future that runs on the loop's thread (it was woken).
    Poll(Arc<LoopTask>),
}

/// One event loop's inbox.
pub(crate) struct Inbox {
    jobs: Mutex<Vec<Job>>,
    /// Written to when the inbox stops being empty; the loop reads it.
    wake: UnixStream,
}

impl Inbox {
    /// Hands a job to the loop, waking it if it may be asleep.
    pub(crate) fn push(&self, job: Job) {
        let first = {
            let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
            jobs.push(job);
            jobs.len() == 1
        };
        if first {
            // A full socket buffer means a wake-up is pending already.
            let _ = (&self.wake).write(&[1]);
        }
    }

    fn take(&self) -> Vec<Job> {
        std::mem::take(&mut *self.jobs.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Runs what the inbox holds: called by the loop when the wake-up socket is readable.
#[pyclass(frozen)]
struct Drain {
    inbox: Arc<Inbox>,
    readable: Mutex<UnixStream>,
}

#[pymethods]
impl Drain {
    fn __call__(&self, py: Python<'_>) {
        {
            let mut r = self.readable.lock().unwrap_or_else(|e| e.into_inner());
            let mut buf = [0u8; 256];
            while matches!(r.read(&mut buf), Ok(n) if n == buf.len()) {}
        }
        for job in self.inbox.take() {
            match job {
                Job::Resolve { fut, result } => resolve(py, fut.bind(py), result),
                Job::Run(f) => f(py),
                Job::Poll(task) => task.poll(),
            }
        }
    }
}

fn resolve(py: Python<'_>, fut: &Bound<'_, PyAny>, result: Result<Make, Error>) {
    if fut
        .call_method0(intern!(py, "done"))
        .and_then(|d| d.is_truthy())
        .unwrap_or(true)
    {
        return;
    }
    let outcome = match result.map_err(|e| e.into_pyerr(py)) {
        Ok(make) => match make(py) {
            Ok(v) => fut.call_method1(intern!(py, "set_result"), (v,)),
            Err(e) => fut.call_method1(intern!(py, "set_exception"), (e.into_value(py),)),
        },
        Err(e) => fut.call_method1(intern!(py, "set_exception"), (e.into_value(py),)),
    };
    if let Err(e) = outcome {
        e.write_unraisable(py, Some(fut));
    }
}

thread_local! {
    /// The last loop this thread asked for, and its inbox.
    static LAST: std::cell::RefCell<Option<(Py<PyAny>, Arc<Inbox>)>> = const { std::cell::RefCell::new(None) };
}

/// The running loop of this thread, and its inbox (made on first use).
pub(crate) fn current(py: Python<'_>) -> PyResult<(Bound<'_, PyAny>, Arc<Inbox>)> {
    static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let lp = GET_RUNNING_LOOP
        .import(py, "asyncio", "get_running_loop")?
        .call0()?;
    let cached = LAST.with(|c| {
        c.borrow()
            .as_ref()
            .filter(|(l, _)| l.as_ptr() == lp.as_ptr())
            .map(|(_, i)| i.clone())
    });
    if let Some(inbox) = cached {
        return Ok((lp, inbox));
    }
    // Looked up by the loop in a registry kept on the Python side (weakly, so a closed loop
    // and its inbox go away together).
    let registry = py.import("rrssh._bridge")?;
    let inbox = match registry.call_method1("inbox_of", (&lp,))? {
        found if !found.is_none() => found.cast_into::<InboxHandle>()?.get().0.clone(),
        _ => {
            let (wake, readable) = UnixStream::pair()?;
            wake.set_nonblocking(true)?;
            readable.set_nonblocking(true)?;
            let fd = readable.as_raw_fd();
            let inbox = Arc::new(Inbox {
                jobs: Mutex::new(Vec::new()),
                wake,
            });
            let drain = Drain {
                inbox: inbox.clone(),
                readable: Mutex::new(readable),
            };
            lp.call_method1("add_reader", (fd, drain))?;
            registry.call_method1("remember", (&lp, InboxHandle(inbox.clone())))?;
            inbox
        }
    };
    LAST.with(|c| *c.borrow_mut() = Some((lp.clone().unbind(), inbox.clone())));
    Ok((lp, inbox))
}

/// A loop's inbox, as the Python side keeps it.
#[pyclass(frozen, name = "Inbox")]
pub(crate) struct InboxHandle(pub(crate) Arc<Inbox>);

/// Cancels the Rust side of an awaitable when its asyncio future is cancelled (the task
/// awaiting it was): a runtime task is aborted, a loop task's future dropped.
#[pyclass(frozen)]
struct OnCancel(Cancel);

enum Cancel {
    Abort(AbortHandle),
    Drop(Arc<LoopTask>),
}

#[pymethods]
impl OnCancel {
    fn __call__(&self, fut: &Bound<'_, PyAny>) -> PyResult<()> {
        if fut
            .call_method0(intern!(fut.py(), "cancelled"))?
            .is_truthy()?
        {
            match &self.0 {
                Cancel::Abort(task) => task.abort(),
                Cancel::Drop(task) => {
                    let taken = task.fut.lock().unwrap_or_else(|e| e.into_inner()).take();
                    drop(taken);
                }
            }
        }
        Ok(())
    }
}

/// The running loop's inbox, and a new asyncio future of that loop.
fn new_future(py: Python<'_>) -> PyResult<(Arc<Inbox>, Bound<'_, PyAny>)> {
    let (lp, inbox) = current(py)?;
    Ok((inbox, lp.call_method0(intern!(py, "create_future"))?))
}

/// What `fut` ends with, to be made into a Python object by `make` on the loop's thread.
async fn outcome<F, T>(
    fut: F,
    make: fn(Python<'_>, T) -> PyResult<Py<PyAny>>,
) -> Result<Make, Error>
where
    F: Future<Output = Result<T, Error>>,
    T: Send + 'static,
{
    fut.await
        .map(|v| Box::new(move |py: Python<'_>| make(py, v)) as Make)
}

/// A future polled on the event loop's own thread: woken (by a runtime thread, when the answer
/// came), it is queued in the loop's inbox, and the loop polls it there. A call made this way
/// costs no runtime task and no wake-up of a runtime thread.
pub(crate) struct LoopTask {
    fut: Mutex<Option<Pin<Box<dyn Future<Output = ()> + Send>>>>,
    inbox: Arc<Inbox>,
    queued: AtomicBool,
}

impl Wake for LoopTask {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.inbox.push(Job::Poll(self.clone()));
        }
    }
}

impl LoopTask {
    /// Polls once, inside the runtime's context (timers, the connection's wake-ups).
    fn poll(self: &Arc<Self>) {
        self.queued.store(false, Ordering::Release);
        let mut slot = self.fut.lock().unwrap_or_else(|e| e.into_inner());
        let Some(f) = slot.as_mut() else {
            return;
        };
        let _rt = runtime().enter();
        let waker = Waker::from(self.clone());
        if f.as_mut().poll(&mut Context::from_waker(&waker)).is_ready() {
            *slot = None;
        }
    }
}

/// Where an awaitable's Rust future runs.
#[derive(Clone, Copy)]
pub(crate) enum Run {
    /// A task on rrssh's runtime (for work that may take long: streams, connecting, serving).
    OnRuntime,
    /// Polled on the loop's own thread, inside the runtime's context, whenever woken: no task
    /// and no wake-up of a runtime thread, for short calls (long work would hold the loop).
    OnLoop,
}

/// An asyncio future of the running loop for what `fut` ends with, made into a Python object
/// by `make` on the loop's thread. Cancelling it cancels `fut`.
pub(crate) fn awaitable<'py, F, T>(
    py: Python<'py>,
    run: Run,
    fut: F,
    make: fn(Python<'_>, T) -> PyResult<Py<PyAny>>,
) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Result<T, Error>> + Send + 'static,
    T: Send + 'static,
{
    let (inbox, pyfut) = new_future(py)?;
    let target = pyfut.clone().unbind();
    let cancel = match run {
        Run::OnRuntime => {
            let task = runtime().spawn(async move {
                let result = outcome(fut, make).await;
                inbox.push(Job::Resolve {
                    fut: target,
                    result,
                });
            });
            Cancel::Abort(task.abort_handle())
        }
        Run::OnLoop => {
            let task = Arc::new(LoopTask {
                fut: Mutex::new(Some(Box::pin(async move {
                    let result = outcome(fut, make).await;
                    Python::attach(|py| resolve(py, target.bind(py), result));
                }))),
                inbox,
                queued: AtomicBool::new(false),
            });
            task.poll();
            Cancel::Drop(task)
        }
    };
    pyfut.call_method1(intern!(py, "add_done_callback"), (OnCancel(cancel),))?;
    Ok(pyfut)
}

/// `None`, for awaitables of nothing.
pub(crate) fn none(py: Python<'_>, (): ()) -> PyResult<Py<PyAny>> {
    Ok(py.None())
}
