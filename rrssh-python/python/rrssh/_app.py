"""Serving Python handlers over SSH: `App`, its route decorators, and where it is served."""

import asyncio
import inspect
import json as _json
import logging
import os
import traceback
import types
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from . import _eager, _openapi, _rrssh, _typed
from ._client import _ENCODER, Client, Response, _dumps, _login
from ._errors import HTTPError

log = logging.getLogger("rrssh")

_JSON = "application/json"
# Stream lines are sent in batches of about this many bytes (each batch is one wake-up of the
# connection), and at once whenever the generator waits.
_BATCH = 32 * 1024


@dataclass(frozen=True)
class Peer:
    """The verified caller: the login name and key its `authorized_keys` line bound, and the
    service name it announced (for a reverse service)."""

    user: str
    fingerprint: str
    service: Optional[str] = None
    comment: Optional[str] = None
    remote_addr: Optional[str] = None


@dataclass
class _Route:
    method: str
    path: str
    handler: Callable[..., Any]
    stream: bool
    params: Tuple[_typed.Param, ...]
    # Added by the app itself (the OpenAPI document).
    builtin: bool = False
    # The handler cannot wait: run as a function call (see `_eager`).
    inline: bool = False


def _json_body(headers: List[Tuple[str, str]], body: bytes) -> Any:
    """The request body decoded as JSON (`None` when empty); 415 or 400 if it is not JSON."""
    if not body:
        return None
    ct = next((v for k, v in headers if k == "content-type"), "")
    if not (ct.startswith(_JSON) or ct.endswith("+json")):
        raise HTTPError(415, "expected a request with `content-type: application/json`")
    try:
        return _json.loads(body)
    except ValueError as e:
        raise HTTPError(400, f"the body is not valid JSON: {e}") from None


def _error_body(status: int, message: str, detail: Any = None) -> bytes:
    err: Dict[str, Any] = {"status": status, "message": message}
    if detail is not None:
        err["detail"] = detail
    return _dumps({"error": err})


class App:
    """Routes to Python handlers.

    ```python
    app = rrssh.App()

    @app.get("/items/{id}")
    async def item(id: str, peer: rrssh.Peer):
        return {"id": id, "asked_by": peer.user}
    ```

    A handler's parameters are filled by name: path parameters, `params` (the query, a dict of
    strings, or of lists for repeated keys), `json` (the decoded body), `body` (the raw bytes),
    `headers` (a dict), `peer` (a `Peer`); any other parameter is taken from the query. Path
    and query parameters are converted by their annotation (`int`, `float`, `bool`, `str`,
    `list[…]`, `Optional[…]`; unannotated ones stay strings), a parameter annotated with a
    dataclass or a pydantic model is the JSON body decoded into it; a value that does not fit
    is answered 422 naming the field, and the handler does not run. It returns something JSON can
    encode, or a `Response`; `raise HTTPError(404, "no such item")` answers with that status;
    any other exception answers 500. A `@app.stream` handler is an async generator: each
    item it yields is one item of the stream."""

    def __init__(self, *, expose_errors: bool = False) -> None:
        self._routes: List[_Route] = []
        self._server: Any = None
        # Tracebacks of failed handlers in the 500's `detail` (for development: they show code).
        self.expose_errors = expose_errors

    def route(self, method: str, path: str, *, stream: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(handler: Callable[..., Any]) -> Callable[..., Any]:
            if stream and not inspect.isasyncgenfunction(handler):
                raise TypeError(f"@stream handler {handler.__name__} must be an async generator (async def … yield)")
            inline = not stream and _eager.never_waits(handler)
            self._routes.append(_Route(method.upper(), path, handler, stream, _typed.params_of(handler), inline=inline))
            return handler

        return register

    def get(self, path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self.route("GET", path)

    def post(self, path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self.route("POST", path)

    def put(self, path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self.route("PUT", path)

    def patch(self, path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self.route("PATCH", path)

    def delete(self, path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self.route("DELETE", path)

    def stream(self, path: str, method: str = "STREAM") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self.route(method, path, stream=True)

    # ------------------------------------------------------------------ serving

    def openapi(self, title: str = "rrssh API", version: str = "0.1.0") -> Dict[str, Any]:
        """The OpenAPI 3.1 document of the routes, from their handlers' hints (served at
        `GET /.well-known/rrssh/openapi.json` too, unless a route of that path is defined)."""
        return _openapi.document([r for r in self._routes if r.path != _openapi.PATH or not r.builtin], title, version)

    def _service(self) -> Any:
        if not any(r.path == _openapi.PATH and r.method == "GET" for r in self._routes):

            def openapi() -> Dict[str, Any]:
                return self.openapi()

            self._routes.append(_Route("GET", _openapi.PATH, openapi, False, (), builtin=True, inline=True))
        routes = [(r.method, r.path, i) for i, r in enumerate(self._routes)]
        return _rrssh.Service(routes, self._dispatch)

    def _dispatch(self, index: int, params: Dict[str, str], target: str, headers: List[Tuple[str, str]], body: bytes, peer: Any, reply: Any) -> None:
        route = self._routes[index]
        coro = self._run(route, params, target, headers, body, peer, reply)
        task = _eager.start(asyncio.get_running_loop(), coro, route.inline)
        if task is not None:
            reply.bind(task)

    def _arguments(self, route: _Route, params: Dict[str, str], target: str, headers: List[Tuple[str, str]], body: bytes, peer: Any) -> Dict[str, Any]:
        kwargs: Dict[str, Any] = {}
        query: Optional[Dict[str, List[str]]] = None
        for p in route.params:
            name = p.name
            if name in params:
                kwargs[name] = _typed.convert(params[name], p.hint, name, "path")
            elif name == "params":
                query = query or parse_qs(urlsplit(target).query, keep_blank_values=True)
                kwargs[name] = {k: v[0] if len(v) == 1 else v for k, v in query.items()}
            elif name == "json" or (name not in _typed.SPECIAL and _typed.is_model(p.hint)):
                decoded = _json_body(headers, body)
                if _typed.is_model(p.hint):
                    if decoded is None:
                        raise HTTPError(422, "the body is required", {"field": name, "in": "body"})
                    decoded = _typed.model(decoded, p.hint)
                kwargs[name] = decoded
            elif name == "body":
                kwargs[name] = body
            elif name == "headers":
                kwargs[name] = dict(headers)
            elif name == "peer":
                kwargs[name] = Peer(**peer) if peer is not None else None
            else:
                query = query or parse_qs(urlsplit(target).query, keep_blank_values=True)
                kwargs[name] = _typed.query_value(p, query)
        return kwargs

    async def _run(self, route: _Route, params: Dict[str, str], target: str, headers: List[Tuple[str, str]], body: bytes, peer: Any, reply: Any) -> None:
        sink = None
        try:
            kwargs = self._arguments(route, params, target, headers, body, peer)
            if route.stream:
                sink = reply.stream()
                await _pump(route.handler(**kwargs), sink)
                return
            result = route.handler(**kwargs)
            if inspect.isawaitable(result):
                result = await result
            if isinstance(result, Response):
                reply.send(result.status, list(result.headers.items()), result.bytes())
            elif result is None:
                reply.send(204, [], b"")
            else:
                reply.send(200, [("content-type", _JSON)], _dumps(result))
        except asyncio.CancelledError:
            raise
        except HTTPError as e:
            if sink is not None:
                sink.fail(e.status, e.message)
            else:
                reply.send(e.status, [("content-type", _JSON)], _error_body(e.status, e.message, e.detail))
        except Exception as e:  # noqa: BLE001 - every failure answers the call
            log.exception("handler %s %s failed", route.method, route.path)
            msg = f"the handler failed: {type(e).__name__}: {e}"
            if sink is not None:
                sink.fail(500, msg)
            else:
                detail = {"traceback": traceback.format_exc().splitlines()} if self.expose_errors else None
                reply.send(500, [("content-type", _JSON)], _error_body(500, msg, detail))

    async def serve(
        self,
        listen: str = "127.0.0.1:8022",
        *,
        host_key: str = "host_key",
        authorized_keys: str = "authorized_keys",
        owner: Optional[str] = None,
        relay: bool = False,
        permit_open: Optional[str] = None,
        permit_listen: Optional[str] = None,
        terminal: Optional[str] = None,
        terminal_for_every_key: bool = False,
    ) -> "Server":
        """Serves the routes as an SSH server on `listen` (forward mode). The host key file is
        made (ed25519) if missing; callers log in with the keys of `authorized_keys` (OpenSSH's
        format and options; a key without `rrssh-users` logs in as `owner`, by default the
        user running it, as under sshd). With `relay=True` it is also a hub that reverse
        services join.

        `permit_open` lets callers open TCP tunnels (`ssh -L`, `Client.forward_local`) to these
        `host:port` patterns (`"127.0.0.1:5432,db.internal:*"`), `permit_listen` lets them ask
        the server to listen (`ssh -R`) on these; none by default. `terminal` serves terminal
        sessions (`ssh -t`, `Client.terminal`) with this shell, to the keys granted one (`pty`
        or the scope `terminal` on their line), or to every key not forbidden one with
        `terminal_for_every_key=True`."""
        native = await _rrssh.serve(
            self._service() if self._routes else None,
            listen,
            os.path.expanduser(host_key),
            os.path.expanduser(authorized_keys),
            owner or os.environ.get("USER") or "rrssh",
            relay,
            permit_open,
            permit_listen,
            terminal,
            terminal_for_every_key,
        )
        self._server = Server(native)
        return self._server

    async def serve_reverse(
        self,
        hub: str,
        name: str,
        **login_options: Any,
    ) -> "Reverse":
        """Serves the routes through a hub (`ssh://[user@]hub[:port]`) under `name` (reverse
        mode: the service dials out, from behind NAT). It reconnects, with backoff, whenever
        the connection drops. It logs in as `rrssh.connect` does, with the same keywords
        (`identity`, `known_hosts`, `accept_new`, `host_key`, `password`, `agent`,
        `ssh_config`, `jump`, `timeout`, `keepalive`)."""
        if "plain" in login_options:
            raise TypeError("serve_reverse needs the rrssh API: plain is not an option here")
        login, _ = _login(hub, **login_options)
        return Reverse(_rrssh.serve_reverse(self._service(), login, name))

    def events(self, callers: bool = False) -> "Events":
        """The connection events of the hub this app serves (`serve(relay=True)`), from now
        on: dicts with `event` (`connected`, `disconnected`, `refused`), `name`, `user`,
        `fingerprint`, `reason`; those of the services (named), and with `callers=True` also
        those of callers (`name` is `None`). `async for ev in app.events(): …`"""
        if self._server is None:
            raise RuntimeError("events() needs a running server: await app.serve(…, relay=True) first")
        return self._server.events(callers)


@types.coroutine
def _next_item(step: Any, on_wait: Callable[[], Any]) -> Any:
    """Awaits `step` (a generator's `__anext__()`), running the coroutine `on_wait()` first if
    the generator waits instead of yielding at once: what it yielded so far goes out before
    it sleeps, while items it yields back to back still travel together."""
    try:
        pending = step.send(None)
    except StopIteration as done:
        return done.value
    # The generator waits: flush, then wait with it.
    try:
        yield from on_wait().__await__()
    except BaseException:
        step.close()
        raise
    return (yield from _eager.Resume(step, pending).__await__())


async def _pump(items: Any, sink: Any) -> None:
    """Moves a handler's items into the stream with backpressure: in batches of up to 32 KiB
    while the generator yields back to back, and at once whenever it waits."""
    encode = _ENCODER.encode
    buf: List[str] = []
    size = 0

    async def flush() -> None:
        nonlocal size
        if not buf:
            return
        data = ("\n".join(buf) + "\n").encode()
        buf.clear()
        size = 0
        if not sink.try_send(data):
            await sink.send(data)

    try:
        while True:
            try:
                item = await _next_item(items.__anext__().__await__(), flush)
            except StopAsyncIteration:
                break
            line = encode(item)
            buf.append(line)
            size += len(line) + 1
            if size >= _BATCH:
                await flush()
        await flush()
        sink.close()
    except BaseException:
        if buf:
            data = ("\n".join(buf) + "\n").encode()
            sink.try_send(data)
        raise
    finally:
        aclose = getattr(items, "aclose", None)
        if aclose is not None:
            await aclose()


class Server:
    """A running `App.serve`."""

    def __init__(self, native: Any) -> None:
        self._native = native

    @property
    def address(self) -> Tuple[str, int]:
        """`(host, port)` it listens on."""
        return self._native.address

    @property
    def port(self) -> int:
        return self._native.address[1]

    def peers(self) -> List[str]:
        """The names of the reverse services connected to it."""
        return self._native.peers()

    def events(self, callers: bool = False) -> "Events":
        """Connection events from now on, as `App.events`; `callers=True` also gives those of
        connections that serve no named service (their `name` is `None`)."""
        return Events(self._native.events(callers))

    def peer(self, name: str) -> "Client":
        """A client for the service `name` connected to this hub: calls go straight to it, as
        those of a `hub://…/name` client do, without a connection of this process's own."""
        return Client(self._native.peer(name))

    async def close(self, grace: float = 5.0) -> None:
        """Stops accepting; calls in flight get `grace` seconds to finish."""
        await self._native.close(grace)

    async def __aenter__(self) -> "Server":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


class Events:
    """A hub's connection events, subscribed to when made (none is missed after that)."""

    def __init__(self, native: Any) -> None:
        self._native: Any = native

    def __aiter__(self) -> "Events":
        return self

    async def __anext__(self) -> Dict[str, Any]:
        if self._native is None:
            raise StopAsyncIteration
        e = await self._native.next()
        if e is None:
            self._native = None
            raise StopAsyncIteration
        return e

    async def aclose(self) -> None:
        self._native = None


class Reverse:
    """A running `App.serve_reverse`."""

    def __init__(self, native: Any) -> None:
        self._native = native

    @property
    def is_connected(self) -> bool:
        return self._native.is_connected

    async def connected(self, timeout: Optional[float] = None) -> None:
        """Waits until it is connected to the hub (raises `Timeout` after `timeout` seconds)."""
        await self._native.connected(timeout)

    async def close(self) -> None:
        """Leaves the hub and stops reconnecting."""
        await self._native.close()

    async def __aenter__(self) -> "Reverse":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
