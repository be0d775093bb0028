"""Starting served calls eagerly: a handler runs at once, in the event loop's callback that
received its call, and becomes an asyncio task only if it waits.

A task per call costs a loop iteration and a handful of objects. On Python 3.12 and newer the
call's task is made with `eager_start=True` (the task runs at once, and `asyncio.current_task()`
is that task). On 3.11 the same holds for handlers that cannot wait (a plain function, or an
`async def` without `await`, `async for` or `async with`): they run as a function call, in a
context of their own as a task would (`asyncio.current_task()` is `None` there). A handler that
waits after all goes on in a task from where it stopped."""

import asyncio
import contextvars
import dis
import inspect
import sys
from typing import Any, Callable, Coroutine, Optional

_EAGER_TASKS = sys.version_info >= (3, 12)

# What a coroutine's own code does to wait.
_WAITING = frozenset(
    {"GET_AWAITABLE", "GET_AITER", "GET_ANEXT", "BEFORE_ASYNC_WITH", "YIELD_VALUE", "SEND", "END_ASYNC_FOR"}
)


def never_waits(handler: Callable[..., Any]) -> bool:
    """Whether calling `handler` cannot wait: a plain function, or an `async def` whose own code
    has nothing that waits (what it calls can still return an awaitable: then it is awaited
    in a task)."""
    fn = inspect.unwrap(handler)
    if not inspect.iscoroutinefunction(fn):
        return not inspect.isasyncgenfunction(fn) and inspect.isfunction(fn)
    code = getattr(fn, "__code__", None)
    if code is None:
        return False
    return not any(ins.opname in _WAITING for ins in dis.get_instructions(code))


class Resume:
    """Awaits what a coroutine, started outside a task, was waiting for (`pending`, what it
    yielded), then runs it on to its end: the rest of `coro` as one awaitable."""

    __slots__ = ("_coro", "_pending")

    def __init__(self, coro: Any, pending: Any) -> None:
        self._coro = coro
        self._pending = pending

    def __await__(self) -> Any:
        coro, pending = self._coro, self._pending
        while True:
            try:
                sent = yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - handed to the coroutine, as `await` does
                try:
                    pending = coro.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as done:
                    return done.value


async def _resumed(coro: Any, pending: Any) -> Any:
    return await Resume(coro, pending)


def start(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None], inline: bool) -> Optional["asyncio.Task[None]"]:
    """Runs `coro` now; returns the task it goes on in, or `None` if it is done."""
    if _EAGER_TASKS:
        task = asyncio.Task(coro, loop=loop, eager_start=True)  # type: ignore[call-arg]
        return None if task.done() else task
    if not inline:
        return loop.create_task(coro)
    context = contextvars.copy_context()
    try:
        pending = context.run(coro.send, None)
    except StopIteration:
        return None
    return loop.create_task(_resumed(coro, pending), context=context)
