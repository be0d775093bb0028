"""Blocking calls, for scripts and synchronous code (no event loop needed)::

    import rrssh.sync

    with rrssh.sync.connect("ssh://ada@host:8022", identity="~/.ssh/id_ed25519") as c:
        print(c.get("/items/7", timeout=5))
        for tick in c.stream("/ticks"):
            ...

Each call blocks until it is answered or its `timeout` (seconds) passes; then `rrssh.Timeout`
is raised and the call is cancelled on the server, as when an async caller gives up. The
calls run on one event loop in a thread of its own, shared by every synchronous client of the
process; it may be used from any number of threads at once.
"""

import asyncio
import concurrent.futures
import threading
from typing import Any, Callable, Coroutine, Dict, Iterator, Mapping, Optional, TypeVar

from . import _client
from ._errors import Timeout

T = TypeVar("T")
Headers = Optional[Mapping[str, str]]

_lock = threading.Lock()
_loop: Optional[asyncio.AbstractEventLoop] = None


def _the_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="rrssh-sync", daemon=True).start()
            _loop = loop
        return _loop


def _run(coro: Coroutine[Any, Any, T], timeout: Optional[float]) -> T:
    """Runs `coro` on the shared loop and waits for it; past `timeout`, it is cancelled."""
    if _running_here():
        coro.close()
        raise RuntimeError("rrssh.sync is for synchronous code: in a coroutine, await the rrssh.Client calls")
    fut = asyncio.run_coroutine_threadsafe(coro, _the_loop())
    try:
        return fut.result(timeout)
    except concurrent.futures.TimeoutError:
        fut.cancel()
        raise Timeout(f"no answer within {timeout} s") from None


def _running_here() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class Client:
    """A blocking client; the same calls as `rrssh.Client`, each with a `timeout`."""

    def __init__(self, inner: _client.Client) -> None:
        self._inner = inner

    def request(self, method: str, path: str, *, timeout: Optional[float] = None, **kw: Any) -> _client.Response:
        """Any call; the answer whatever its status, as `rrssh.Client.request`."""
        return _run(self._inner.request(method, path, timeout=timeout, **kw), _outer(timeout))

    def get(self, path: str, *, params: Optional[Mapping[str, Any]] = None, headers: Headers = None, timeout: Optional[float] = None) -> Any:
        return _run(self._inner.get(path, params=params, headers=headers, timeout=timeout), _outer(timeout))

    def post(self, path: str, json: Any = None, *, params: Optional[Mapping[str, Any]] = None, headers: Headers = None, timeout: Optional[float] = None) -> Any:
        return _run(self._inner.post(path, json, params=params, headers=headers, timeout=timeout), _outer(timeout))

    def put(self, path: str, json: Any = None, *, params: Optional[Mapping[str, Any]] = None, headers: Headers = None, timeout: Optional[float] = None) -> Any:
        return _run(self._inner.put(path, json, params=params, headers=headers, timeout=timeout), _outer(timeout))

    def patch(self, path: str, json: Any = None, *, params: Optional[Mapping[str, Any]] = None, headers: Headers = None, timeout: Optional[float] = None) -> Any:
        return _run(self._inner.patch(path, json, params=params, headers=headers, timeout=timeout), _outer(timeout))

    def delete(self, path: str, *, params: Optional[Mapping[str, Any]] = None, headers: Headers = None, timeout: Optional[float] = None) -> Any:
        return _run(self._inner.delete(path, params=params, headers=headers, timeout=timeout), _outer(timeout))

    def stream(self, path: str, *, params: Optional[Mapping[str, Any]] = None, timeout: Optional[float] = None, item_timeout: Optional[float] = None) -> Iterator[Any]:
        """A stream's items as they arrive; `item_timeout` bounds the wait for each one.
        Leaving the loop early cancels the stream."""
        items = self._inner.stream(path, params=params, timeout=timeout)
        agen = _run(_aiter(items), 30.0)
        try:
            while True:
                try:
                    yield _run(agen.__anext__(), item_timeout)
                except StopAsyncIteration:
                    return
        finally:
            _run(agen.aclose(), 5.0)

    def peer(self, name: str) -> "Client":
        """Calls to the peer `name` of the hub, through this connection."""
        return Client(self._inner.peer(name))

    def terminal(self, cols: int = 80, rows: int = 24, command: Optional[str] = None, *, term: str = "xterm-256color", idle_timeout: Optional[float] = None, timeout: float = 30.0) -> "Terminal":
        """A terminal session, as `rrssh.Client.terminal`, with blocking methods."""
        return Terminal(_run(self._inner.terminal(cols, rows, command, term, idle_timeout), timeout))

    def forward_local(self, host: str, port: int, listen: str = "127.0.0.1:0", *, timeout: float = 30.0) -> Any:
        """A local tunnel (`ssh -L`), as `rrssh.Client.forward_local`."""
        return _run(self._inner.forward_local(host, port, listen), timeout)

    def forward_remote(self, host: str, port: int, *, bind: str = "127.0.0.1", remote_port: int = 0, timeout: float = 30.0) -> Any:
        """A remote tunnel (`ssh -R`), as `rrssh.Client.forward_remote`."""
        return _run(self._inner.forward_remote(host, port, bind=bind, remote_port=remote_port), timeout)

    def info(self) -> Dict[str, Any]:
        """As `rrssh.Client.info`."""
        return self._inner.info()

    @property
    def is_connected(self) -> bool:
        return self._inner.is_connected

    @property
    def is_closed(self) -> bool:
        return self._inner.is_closed

    def close(self) -> None:
        _run(self._inner.close(), 10.0)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Terminal:
    """A terminal session with blocking methods (see `rrssh.Client.terminal`)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def write(self, data: bytes, *, timeout: float = 30.0) -> None:
        _run(_on_loop(lambda: self._inner.write(data)), timeout)

    def read(self, timeout: Optional[float] = None) -> Optional[bytes]:
        """Output within `timeout` seconds (`b""` if none came), `None` once the session ended."""
        return _run(_on_loop(lambda: self._inner.read(timeout)), None if timeout is None else timeout + 5.0)

    def resize(self, cols: int, rows: int, *, timeout: float = 30.0) -> None:
        _run(_on_loop(lambda: self._inner.resize(cols, rows)), timeout)

    def close(self, *, timeout: float = 30.0) -> None:
        _run(_on_loop(lambda: self._inner.close()), timeout)

    @property
    def exit_status(self) -> Optional[int]:
        return self._inner.exit_status

    @property
    def is_open(self) -> bool:
        return self._inner.is_open

    @property
    def timed_out(self) -> bool:
        return self._inner.timed_out

    def __enter__(self) -> "Terminal":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


async def _on_loop(start: Callable[[], Any]) -> Any:
    # A native awaitable belongs to the loop that made it: made here, on the shared loop.
    return await start()


async def _aiter(items: Any) -> Any:
    # `Client.stream` is an async generator function or a coroutine returning an iterator.
    if asyncio.iscoroutine(items):
        items = await items
    return items.__aiter__()


def _outer(timeout: Optional[float]) -> Optional[float]:
    # The call's own deadline travels with it; the wait here only adds slack for the answer.
    return None if timeout is None else timeout + 1.0


def connect(target: str, *, timeout: float = 30.0, **kw: Any) -> Client:
    """Connects as `rrssh.connect` does (same arguments), blocking up to `timeout` seconds."""
    return Client(_run(_client.connect(target, timeout=timeout, **kw), timeout + 1.0))
