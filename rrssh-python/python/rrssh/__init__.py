"""rrssh: REST-style JSON APIs over SSH, from asyncio.

Call an rrssh server or a service behind a hub::

    client = await rrssh.connect("ssh://ada@host:8022", identity="~/.ssh/id_ed25519")
    items = await client.get("/items", params={"limit": 10})
    async for tick in client.stream("/ticks"):
        ...

Serve Python handlers, as an SSH server or as a reverse service that dials a hub::

    app = rrssh.App()

    @app.get("/items/{id}")
    async def item(id: str, peer: rrssh.Peer):
        return {"id": id, "asked_by": peer.user}

    await app.serve("127.0.0.1:8022", host_key="host_key", authorized_keys="authorized_keys")
    await app.serve_reverse("ssh://hub:8022", "billing", identity="~/.ssh/id_ed25519")

The SSH connections, calls, flow control and reconnection run in rrssh's Rust core, on a
runtime of its own; asyncio sees ordinary awaitables, and cancelling the task that awaits a
call cancels the call.
"""

from . import _rrssh
from ._errors import (
    AuthError,
    Error,
    HostKeyError,
    HTTPError,
    StatusError,
    TerminalClosed,
    TerminalError,
    TerminalRefused,
    Timeout,
    Unavailable,
)

_rrssh._register_errors(
    {
        c.__name__: c
        for c in (Error, StatusError, Unavailable, Timeout, HostKeyError, AuthError, TerminalRefused, TerminalClosed)
    }
)

from ._app import App, Peer, Reverse, Server  # noqa: E402
from ._client import Client, Response, connect, over_ssh  # noqa: E402

__version__ = _rrssh.__version__

__all__ = [
    "App",
    "AuthError",
    "Client",
    "Error",
    "HTTPError",
    "HostKeyError",
    "Peer",
    "Response",
    "Reverse",
    "Server",
    "StatusError",
    "TerminalClosed",
    "TerminalError",
    "TerminalRefused",
    "Timeout",
    "Unavailable",
    "connect",
    "over_ssh",
]
