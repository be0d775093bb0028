"""Calling rrssh servers and hubs from asyncio."""

import json as _json
import os
from typing import Any, AsyncIterator, Dict, Iterable, List, Mapping, Optional, Tuple, Union
from urllib.parse import quote, urlencode

from . import _rrssh
from ._errors import StatusError

Headers = Union[Mapping[str, str], Iterable[Tuple[str, str]], None]

_JSON = "application/json"
_PEERS = "/.well-known/rrssh/peers/"


def _dumps(value: Any) -> bytes:
    return _json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


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
    """A connection to an rrssh server, or to one peer through a hub (`hub://…/NAME`)."""

    def __init__(self, native: Any, prefix: str = "") -> None:
        self._native = native
        self._prefix = prefix

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
        return _json.loads(data) if data else None

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
        loads = _json.loads
        try:
            while True:
                batch = await items.next_batch()
                if batch is None:
                    return
                for raw in batch:
                    yield loads(raw)
        finally:
            items.close()

    async def terminal(self, cols: int = 80, rows: int = 24, command: Optional[str] = None, term: str = "xterm-256color") -> Any:
        """A terminal session (`ssh -t`): `write`, `read(timeout=…)`, `resize`, `close`."""
        return await self._native.terminal(cols, rows, command, term)

    async def forward_local(self, host: str, port: int, listen: str = "127.0.0.1:0") -> Any:
        """Listens on `listen` and carries each connection to `host:port` as the server sees it
        (`ssh -L`); the result's `address` is where it listens."""
        return await self._native.forward_local(listen, host, port)

    def peer(self, name: str) -> "Client":
        """The same connection, calling the peer `name` of this hub."""
        return Client(self._native, self._prefix + _PEERS + quote(name, safe=""))

    @property
    def is_closed(self) -> bool:
        return self._native.is_closed

    async def close(self) -> None:
        await self._native.close()

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


def _parse_target(target: str) -> Tuple[Optional[str], str, int, Optional[str]]:
    """`ssh://[user@]host[:port]` or `hub://[user@]host[:port]/PEER`."""
    if target.startswith("ssh://"):
        rest, hub = target[6:], False
    elif target.startswith("hub://"):
        rest, hub = target[6:], True
    else:
        raise ValueError(f"target {target!r} must start with ssh:// (a server) or hub:// (a peer of a hub)")
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
        port = int(port_s) if port_s else 22
    except ValueError:
        raise ValueError(f"target {target!r}: bad port") from None
    return (user or None), host, port, peer


def _login(
    target: str,
    identity: Optional[str],
    known_hosts: Optional[str],
    accept_new: bool,
    host_key: Optional[str],
    password: Optional[str],
    agent: Optional[bool],
    timeout: float,
) -> Tuple[Dict[str, Any], Optional[str]]:
    user, host, port, peer = _parse_target(target)
    if identity is None and password is None and agent is None:
        # As ssh does: the agent if there is one, else the default key.
        default = os.path.expanduser("~/.ssh/id_ed25519")
        if os.environ.get("SSH_AUTH_SOCK"):
            agent = True
        elif os.path.exists(default):
            identity = default
    if known_hosts is None and host_key is None:
        known_hosts = "~/.ssh/known_hosts"
    login = {
        "host": host,
        "port": port,
        "user": user or os.environ.get("USER") or "rrssh",
        "identity": os.path.expanduser(identity) if identity else None,
        "known_hosts": os.path.expanduser(known_hosts) if known_hosts else None,
        "accept_new": accept_new,
        "host_key": host_key,
        "password": password,
        "agent": bool(agent),
        "timeout": timeout,
    }
    return login, peer


async def connect(
    target: str,
    *,
    identity: Optional[str] = None,
    known_hosts: Optional[str] = None,
    accept_new: bool = False,
    host_key: Optional[str] = None,
    password: Optional[str] = None,
    agent: Optional[bool] = None,
    timeout: float = 10.0,
) -> Client:
    """Connects to `ssh://[user@]host[:port]` (a server) or `hub://[user@]host[:port]/PEER`
    (a peer through a hub).

    The server's key is checked against `known_hosts` (default `~/.ssh/known_hosts`;
    `accept_new=True` records an unknown host, as `StrictHostKeyChecking accept-new`), or must
    be `host_key` (an OpenSSH public key line). The login uses `identity` (a private key file),
    `password`, or the ssh-agent (by default the agent if `SSH_AUTH_SOCK` is set, else
    `~/.ssh/id_ed25519`)."""
    login, peer = _login(target, identity, known_hosts, accept_new, host_key, password, agent, timeout)
    client = Client(await _rrssh.connect(login))
    return client.peer(peer) if peer else client


async def over_ssh(target: str, *extra: str) -> Client:
    """Connects through a spawned OpenSSH `ssh` to `[user@]host[:port]`, running
    `ssh [-p PORT] -o BatchMode=yes EXTRA… -s -- [user@]host rrssh`: `~/.ssh/config`, the
    agent, `known_hosts` and jump hosts work as they do for ssh. `extra` are more ssh options
    (`"-i", KEY`, `"-o", "UserKnownHostsFile=…"`)."""
    return Client(await _rrssh.over_ssh(target, list(extra)))
