"""Which event loop has which inbox (the native module's way back into asyncio)."""

import weakref
from typing import Any, Dict

_weak: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()
_strong: Dict[int, Any] = {}


def inbox_of(loop: Any) -> Any:
    try:
        return _weak.get(loop)
    except TypeError:
        entry = _strong.get(id(loop))
        return entry[1] if entry is not None and entry[0] is loop else None


def remember(loop: Any, inbox: Any) -> None:
    try:
        _weak[loop] = inbox
    except TypeError:
        # A loop that cannot be weakly referenced: kept for the life of the process.
        _strong[id(loop)] = (loop, inbox)
