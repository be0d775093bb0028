"""The exceptions rrssh raises, and the one handlers raise."""

from typing import Any, Optional


class Error(Exception):
    """Anything rrssh reports."""


class StatusError(Error):
    """The peer answered with an error status (4xx, 5xx); its error JSON is in the fields."""

    def __init__(self, status: int, message: str, detail: Any = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.detail = detail


class Unavailable(Error, ConnectionError):
    """No connection to the peer, or it was lost."""


class Timeout(Error, TimeoutError):
    """The deadline passed (a call's `timeout=`, or connecting)."""


class HostKeyError(Error):
    """The server's host key is unknown, or is not the one expected."""


class AuthError(Error):
    """The server refused the login (or the key could not be read)."""


class TerminalError(Error):
    """A terminal session could not be opened or cannot go on."""


class TerminalRefused(TerminalError):
    """The server refused the terminal (no pseudo-terminal, no shell for this key, or a
    connection that cannot carry one); the message says why."""


class TerminalClosed(TerminalError):
    """The terminal session is over (the program exited, or it was hung up)."""


class HTTPError(Exception):
    """Raise it in a handler to answer with this status and message (and detail)."""

    def __init__(self, status: int, message: str, detail: Optional[Any] = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.detail = detail
