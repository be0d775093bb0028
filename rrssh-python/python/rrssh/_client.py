"""Calling rrssh servers and hubs from asyncio."""

import asyncio
import json as _json
import os
from typing import Any, AsyncIterator, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union
from urllib.parse import quote, urlencode

from . import _rrssh
from ._errors import StatusError, Unavailable

Headers = Union[Mapping[str, str], Iterable[Tuple[str, str]], None]

_JSON = "application/json"
# The pauses between the attempts of `Client.subscribe` to open its stream again.
_RESUBSCRIBE_FIRST = 0.25
_RESUBSCRIBE_MAX = 2.0
_PEERS = "/.well-known/rrssh/peers/"


# One encoder for every call: `json.dumps` with options makes a new one each time.
_ENCODER = _json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _dumps(value: Any) -> bytes:
    return _ENCODER.encode(value).encode()


_DECODER = _json.JSONDecoder()


def _loads(data: bytes) -> Any:
    """JSON as rrssh sends it: UTF-8 (no encoding to detect, as `json.loads` does for bytes)."""
    return _DECODER.decode(data.decode())


class Response:
    """An answer: what `Client.request` returns, and what a handler may return
    (`Response(201, {"id": 7})`)."""

    __slots__ = ("status", "headers", "_body")

    def __init__(
        self,
        status: int = 200,
        json: Any = None,
        *,
        body: Optional[bytes] = None,
        headers: Headers = None,
    ) -> None:
        self.status = status
        self.headers: Dict[str, str] = dict(_header_pairs(headers))
        if body is not None:
            self._body = bytes(body)
        elif json is not None:
            self._body = _dumps(json)
            self.headers.setdefault("content-type", _JSON)
        else:
            self._body = b""

    def json(self) -> Any:
        """The body, decoded from JSON (`None` when empty)."""
        return _json.loads(self._body) if self._body else None

    def bytes(self) -> bytes:
        """The body as it came."""
        return self._body

    def text(self) -> str:
        """The body as UTF-8 text."""
        return self._body.decode()

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def raise_for_status(self) -> "Response":
        """Raises `StatusError` unless the status is 2xx."""
        if not self.ok:
            raise _status_error(self.status, self._body)
        return self

    def __repr__(self) -> str:
        return f"Response({self.status}, {len(self._body)} bytes)"


def _header_pairs(headers: Headers) -> List[Tuple[str, str]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return [(str(k), str(v)) for k, v in headers.items()]
    return [(str(k), str(v)) for k, v in headers]


def _status_error(status: int, body: bytes) -> StatusError:
    message, detail = "", None
    try:
        err = _json.loads(body)["error"]
        message, detail = err.get("message", ""), err.get("detail")
    except (ValueError, KeyError, TypeError, AttributeError):
        message = body.decode(errors="replace")[:500]
    return StatusError(status, message, detail)


class Client:
    """A connection to an rrssh server, to one peer through a hub (`hub://…/NAME`), or
    (`plain=True`) to any SSH server for terminals and tunnels."""

    def __init__(self, native: Any, prefix: str = "", info: Optional[Dict[str, Any]] = None) -> None:
        self._native = native
        self._prefix = prefix
        self._info = info or {}

    def _target(self, path: str, params: Optional[Mapping[str, Any]]) -> str:
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        target = self._prefix + path if self._prefix else path
        if params:
            target += ("&" if "?" in target else "?") + urlencode(params, doseq=True)
        return target

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        body: Optional[bytes] = None,
        params: Optional[Mapping[str, Any]] = None,
        headers: Headers = None,
        timeout: Optional[float] = None,
    ) -> Response:
        """Any call; returns the `Response` whatever its status."""
        content_type = None
        if json is not None:
            body, content_type = _dumps(json), _JSON
        status, hdrs, data = await self._native.request(
            method.upper(),
            self._target(path, params),
            body,
            content_type,
            _header_pairs(headers),
            timeout,
        )
        return Response(status, body=data, headers=hdrs)

    async def _json(self, method: str, path: str, json: Any, params: Any, headers: Headers, timeout: Optional[float]) -> Any:
        body, content_type = (None, None) if json is None else (_dumps(json), _JSON)
        status, _, data = await self._native.request(
            method, self._target(path, params), body, content_type, _header_pairs(headers), timeout
        )
        if not 200 <= status < 300:
            raise _status_error(status, data)
        return _loads(data) if data else None

    async def get(self, path: str, *, params: Optional[Mapping[str, Any]] = None, headers: Headers = None, timeout: Optional[float] = None) -> Any:
        """GET; the decoded JSON answer (raises `StatusError` for an error status)."""
        return await self._json("GET", path, None, params, headers, timeout)

    async def post(self, path: str, json: Any = None, *, params: Optional[Mapping[str, Any]] = None, headers: Headers = None, timeout: Optional[float] = None) -> Any:
        """POST `json`; the decoded JSON answer."""
        return await self._json("POST", path, json, params, headers, timeout)

    async def put(self, path: str, json: Any = None, *, params: Optional[Mapping[str, Any]] = None, headers: Headers = None, timeout: Optional[float] = None) -> Any:
        """PUT `json`; the decoded JSON answer."""
        return await self._json("PUT", path, json, params, headers, timeout)

    async def patch(self, path: str, json: Any = None, *, params: Optional[Mapping[str, Any]] = None, headers: Headers = None, timeout: Optional[float] = None) -> Any:
        """PATCH `json`; the decoded JSON answer."""
        return await self._json("PATCH", path, json, params, headers, timeout)

    async def delete(self, path: str, *, params: Optional[Mapping[str, Any]] = None, headers: Headers = None, timeout: Optional[float] = None) -> Any:
        """DELETE; the decoded JSON answer."""
        return await self._json("DELETE", path, None, params, headers, timeout)

    async def stream(
        self,
        path: str,
        *,
        json: Any = None,
        params: Optional[Mapping[str, Any]] = None,
        headers: Headers = None,
        timeout: Optional[float] = None,
        method: str = "STREAM",
    ) -> AsyncIterator[Any]:
        """`async for item in client.stream("/ticks")`: the items of a STREAM answer, decoded.
        Leaving the loop early cancels the call."""
        body, content_type = (None, None) if json is None else (_dumps(json), _JSON)
        items = await self._native.request(
            method, self._target(path, params), body, content_type, _header_pairs(headers), timeout, True
        )
        loads = _loads
        try:
            while True:
                batch = await items.next_batch()
                if batch is None:
                    return
                for raw in batch:
                    yield loads(raw)
        finally:
            items.close()

    async def subscribe(
        self,
        path: str,
        *,
        json: Any = None,
        params: Optional[Mapping[str, Any]] = None,
        headers: Headers = None,
        method: str = "STREAM",
        retry_for: Optional[float] = None,
    ) -> AsyncIterator[Any]:
        """Like `stream`, but lasting: when the stream is cut or cannot be opened because the
        connection is lost (`Unavailable`) or the service is away (503, such as a hub's peer
        that is reconnecting), it is opened again after a pause that grows from 0.25 s to 2 s
        while attempts fail (the call is made anew: items of the outage are not replayed).
        Ends when the stream ends; raises any other error status, or `Unavailable` if no
        connection came back within `retry_for` seconds (default: forever). Needs
        `connect(…, reconnect=True)`."""
        pause = _RESUBSCRIBE_FIRST
        while True:
            try:
                async for item in self.stream(path, json=json, params=params, headers=headers, method=method):
                    pause = _RESUBSCRIBE_FIRST
                    yield item
                return
            except (Unavailable, StatusError) as e:
                if isinstance(e, StatusError) and e.status != 503:
                    raise
                if not self._native.info()["reconnecting"] or self._native.is_closed:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, _RESUBSCRIBE_MAX)
            await self._native.connected(retry_for)

    async def terminal(
        self,
        cols: int = 80,
        rows: int = 24,
        command: Optional[str] = None,
        term: str = "xterm-256color",
        idle_timeout: Optional[float] = None,
    ) -> Any:
        """A terminal session (`ssh -t`): `write`, `read(timeout=…)`, `resize`, `close`,
        `exit_status`, `is_open`, `timed_out`. It is hung up after `idle_timeout` seconds
        with neither input nor output. Raises `TerminalRefused` when the server will not give
        one."""
        return await self._native.terminal(cols, rows, command, term, idle_timeout)

    async def forward_local(self, host: str, port: int, listen: str = "127.0.0.1:0") -> Any:
        """Listens on `listen` and carries each connection to `host:port` as the server sees it
        (`ssh -L`); the result's `address` is where it listens. On a reconnecting client the
        listener stays up across reconnections."""
        return await self._native.forward_local(listen, host, port)

    async def forward_remote(self, host: str, port: int, *, bind: str = "127.0.0.1", remote_port: int = 0) -> Any:
        """Asks the server to listen on `bind:remote_port` (0: one it picks; the result's
        `port`) and carries each connection it accepts to `host:port` as this machine sees it
        (`ssh -R`). On a reconnecting client it is asked again on every connection (give a
        `remote_port`)."""
        return await self._native.forward_remote(bind, remote_port, host, port)

    async def connected(self, timeout: Optional[float] = None) -> None:
        """Waits until a connection is up (raises `Timeout` after `timeout` seconds)."""
        await self._native.connected(timeout)

    async def connection_events(self) -> AsyncIterator[Dict[str, Any]]:
        """What a reconnecting client's connection does, from now on: dicts with `event`
        (`connecting` with `attempt`, `connected`, `disconnected` with `reason`,
        `backing_off` with `delay` in seconds). Ends when the client is closed."""
        events = self._native.connection_events()
        while True:
            ev = await events.next()
            if ev is None:
                return
            yield ev

    def info(self) -> Dict[str, Any]:
        """What this client is connected to: `target`, `host`, `port`, `user` as asked,
        `connected`, `reconnecting`, `api` (whether the server has the rrssh API; `None`
        while disconnected), `closed`."""
        return {**self._info, **self._native.info()}

    def peer(self, name: str) -> "Client":
        """The same connection, calling the peer `name` of this hub."""
        return Client(self._native, self._prefix + _PEERS + quote(name, safe=""), self._info)

    @property
    def is_closed(self) -> bool:
        """Whether the connection is gone for good (closed, or lost without `reconnect`)."""
        return self._native.is_closed

    @property
    def is_connected(self) -> bool:
        """Whether a connection is up now."""
        return self._native.is_connected

    async def close(self) -> None:
        await self._native.close()

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


def _parse_target(target: str) -> Tuple[Optional[str], str, Optional[int], Optional[str]]:
    """`ssh://[user@]host[:port]` or `hub://[user@]host[:port]/PEER` (no port: the ssh
    config's, else 22); over WebSocket, `ws://` or `wss://[user@]host[:port][/path]` and
    `hub+ws://`, `hub+wss://[user@]host[:port]/PEER`, whose URL is the host (dialed as it is)."""
    if target.startswith(("ws://", "wss://")):
        return None, target, None, None
    for scheme in ("hub+ws://", "hub+wss://"):
        if target.startswith(scheme):
            authority, _, peer = target[len(scheme):].partition("/")
            peer = peer.strip("/")
            if not authority or not peer:
                raise ValueError(f"target {target!r} names no peer: {scheme}host[:port]/PEER")
            return None, scheme[len("hub+"):] + authority, None, peer
    if target.startswith("ssh://"):
        rest, hub = target[6:], False
    elif target.startswith("hub://"):
        rest, hub = target[6:], True
    else:
        raise ValueError(
            f"target {target!r} must start with ssh://, ws:// or wss:// (a server), "
            "or hub://, hub+ws:// or hub+wss:// (a peer of a hub)"
        )
    authority, _, peer = rest.partition("/")
    peer = peer.strip("/") or None
    if hub and not peer:
        raise ValueError(f"target {target!r} names no peer: hub://host[:port]/PEER")
    if not hub and peer:
        raise ValueError(f"target {target!r}: an ssh:// target has no path")
    user, _, hostport = authority.rpartition("@")
    if hostport.startswith("["):
        host, _, port_s = hostport[1:].partition("]")
        port_s = port_s.lstrip(":")
    else:
        host, _, port_s = hostport.partition(":")
    if not host:
        raise ValueError(f"target {target!r} has no host")
    try:
        port = int(port_s) if port_s else None
    except ValueError:
        raise ValueError(f"target {target!r}: bad port") from None
    return (user or None), host, port, peer


def _login(
    target: str,
    *,
    identity: Union[str, Iterable[str], None] = None,
    known_hosts: Optional[str] = None,
    accept_new: bool = False,
    host_key: Optional[str] = None,
    password: Optional[str] = None,
    ask_password: Optional[Callable[[str], Optional[str]]] = None,
    agent: Optional[bool] = None,
    ssh_config: Optional[str] = None,
    jump: Optional[str] = None,
    plain: bool = False,
    timeout: float = 10.0,
    keepalive: Optional[Tuple[float, int]] = None,
    proxy: Optional[str] = None,
    tls_ca: Optional[str] = None,
) -> Tuple[Dict[str, Any], Optional[str]]:
    user, host, port, peer = _parse_target(target)
    if isinstance(identity, (str, os.PathLike)):
        identity = [identity]
    if ask_password is not None and not callable(ask_password):
        raise TypeError("ask_password must be a function of the prompt returning the password or None")
    login = {
        "host": host,
        "port": port,
        "user": user,
        "identity": [os.path.expanduser(str(i)) for i in identity or ()],
        "known_hosts": os.path.expanduser(known_hosts) if known_hosts else None,
        "accept_new": accept_new,
        "host_key": host_key,
        "password": password,
        "ask_password": ask_password,
        "agent": agent,
        "ssh_config": os.path.expanduser(ssh_config) if ssh_config and ssh_config != "none" else ssh_config,
        "jump": jump,
        "plain": plain,
        "timeout": timeout,
        "keepalive": keepalive,
        "proxy": proxy,
        "tls_ca": os.path.expanduser(tls_ca) if tls_ca else None,
    }
    return login, peer


async def connect(
    target: str,
    *,
    identity: Union[str, Iterable[str], None] = None,
    known_hosts: Optional[str] = None,
    accept_new: bool = False,
    host_key: Optional[str] = None,
    password: Optional[str] = None,
    ask_password: Optional[Callable[[str], Optional[str]]] = None,
    agent: Optional[bool] = None,
    ssh_config: Optional[str] = None,
    jump: Optional[str] = None,
    plain: bool = False,
    timeout: float = 10.0,
    reconnect: bool = False,
    keepalive: Optional[Tuple[float, int]] = None,
    proxy: Optional[str] = None,
    tls_ca: Optional[str] = None,
) -> Client:
    """Connects to `ssh://[user@]host[:port]` (a server; `host` may be an alias of the ssh
    config) or `hub://[user@]host[:port]/PEER` (a peer through a hub).

    Logging in works as `ssh` does: `identity` (a key file, or several), else the host's
    `IdentityFile` in the ssh config (`ssh_config`, default `~/.ssh/config`; `"none"` reads
    none), else `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`; the ssh-agent (`agent`, by default
    when `SSH_AUTH_SOCK` is set); then `password`, or `ask_password(prompt)` called (on a
    thread of its own) only if the server asks for one (`password` or `keyboard-interactive`).
    `jump` reaches the server through another SSH host (`ssh -J [user@]host[:port]`; the
    config's `ProxyJump` too).

    The server's key is checked against `known_hosts` (default the host's
    `UserKnownHostsFile`, else `~/.ssh/known_hosts`; `accept_new=True` records an unknown
    host, as `StrictHostKeyChecking accept-new`), or must be `host_key` (an OpenSSH public key
    line).

    `plain=True` opens no rrssh API: terminals and tunnels on any SSH server (OpenSSH's
    `sshd`); calls then raise `Unavailable`. `reconnect=True` keeps the connection up: it is
    dialed again (exponential backoff with jitter, 0.25 s to 2 s) whenever it is lost, local
    tunnels keep listening, remote tunnels are asked again, `subscribe` opens its stream
    again, and `connection_events()` tells what happens. `keepalive=(interval, misses)` sets
    how a dead connection is noticed (default 5 s × 3). `proxy` dials through an HTTP
    (`http://[user:password@]host:port`, CONNECT) or SOCKS5 (`socks5://…`, `socks5h://…`)
    proxy; by default the environment's (`ALL_PROXY`, else `HTTPS_PROXY`, unless `NO_PROXY`
    names the host), `"none"` for none.

    Over WebSocket (`wss://…`, `ws://…`, `hub+wss://…`), SSH runs inside the WebSocket, so keys
    and host keys are checked as over TCP; `tls_ca` (a PEM file, a private CA) replaces the
    system's authorities for the server's certificate."""
    login, peer = _login(
        target,
        identity=identity,
        known_hosts=known_hosts,
        accept_new=accept_new,
        host_key=host_key,
        password=password,
        ask_password=ask_password,
        agent=agent,
        ssh_config=ssh_config,
        jump=jump,
        plain=plain,
        timeout=timeout,
        keepalive=keepalive,
        proxy=proxy,
        tls_ca=tls_ca,
    )
    info = {"target": target, "host": login["host"], "port": login["port"], "user": login["user"]}
    client = Client(await _rrssh.connect(login, reconnect), info=info)
    return client.peer(peer) if peer else client


async def over_ssh(target: str, *extra: str) -> Client:
    """Connects through a spawned OpenSSH `ssh` to `[user@]host[:port]`, running
    `ssh [-p PORT] -o BatchMode=yes EXTRA… -s -- [user@]host rrssh`: `~/.ssh/config`, the
    agent, `known_hosts` and jump hosts work as they do for ssh. `extra` are more ssh options
    (`"-i", KEY`, `"-o", "UserKnownHostsFile=…"`)."""
    return Client(await _rrssh.over_ssh(target, list(extra)))
