//! rrssh for Python: the native module `rrssh._rrssh` under the `rrssh` package
//! (`rrssh-python/python/rrssh`), which gives it its asyncio API.
//!
//! Everything network-bound runs on a tokio runtime of its own; Python sees asyncio futures
//! (see `bridge`). JSON is encoded and decoded on the Python side (its C `json` module); the
//! module moves bytes.

mod bridge;
mod client;
mod connection;
mod errors;
mod hosting;
mod login;
mod serve;
mod stream;
mod terminal;
mod tunnels;

use pyo3::prelude::*;

/// The native half of the `rrssh` package.
#[pymodule]
fn _rrssh(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(errors::_register_errors, m)?)?;
    m.add_function(wrap_pyfunction!(client::connect, m)?)?;
    m.add_function(wrap_pyfunction!(client::over_ssh, m)?)?;
    m.add_function(wrap_pyfunction!(hosting::serve, m)?)?;
    m.add_function(wrap_pyfunction!(hosting::serve_reverse, m)?)?;
    m.add_class::<client::Client>()?;
    m.add_class::<tunnels::Forward>()?;
    m.add_class::<tunnels::RemoteTunnel>()?;
    m.add_class::<connection::ConnectionEvents>()?;
    m.add_class::<stream::ItemStream>()?;
    m.add_class::<terminal::Terminal>()?;
    m.add_class::<serve::Service>()?;
    m.add_class::<serve::Reply>()?;
    m.add_class::<serve::Sink>()?;
    m.add_class::<hosting::Server>()?;
    m.add_class::<hosting::Events>()?;
    m.add_class::<hosting::Reverse>()?;
    m.add_class::<bridge::InboxHandle>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
