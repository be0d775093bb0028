"""Served calls started eagerly (`rrssh._eager`): which handlers run as a function call, and
that running them so keeps what a task gives (a context of their own, waiting when they do)."""

import asyncio
import contextvars
import functools

from rrssh import _eager

VAR = contextvars.ContextVar("VAR", default="unset")


async def no_await():
    return 1


async def awaits():
    await asyncio.sleep(0)


async def async_with():
    async with asyncio.Lock():
        return 1


async def async_for(items):
    return [i async for i in items]


def plain():
    return 1


async def agen():
    yield 1


def test_which_handlers_cannot_wait():
    assert _eager.never_waits(no_await)
    assert _eager.never_waits(plain)
    assert _eager.never_waits(functools.wraps(no_await)(lambda: no_await()))
    assert not _eager.never_waits(awaits)
    assert not _eager.never_waits(async_with)
    assert not _eager.never_waits(async_for)
    assert not _eager.never_waits(agen)


async def test_an_inline_call_runs_now_in_a_context_of_its_own():
    ran = []

    async def handler():
        VAR.set("handler")
        ran.append(VAR.get())

    loop = asyncio.get_running_loop()
    assert _eager.start(loop, handler(), inline=True) is None
    assert ran == ["handler"], "it ran before start returned"
    assert VAR.get() == "unset", "its context variables stay its own"


async def test_a_call_that_waits_after_all_goes_on_in_a_task():
    fut = asyncio.get_running_loop().create_future()
    got = []

    async def handler():
        VAR.set("mine")
        got.append(await fut)
        got.append(VAR.get())
        return "done"

    task = _eager.start(asyncio.get_running_loop(), handler(), inline=True)
    assert task is not None and not task.done()
    fut.set_result(7)
    assert await task == "done"
    assert got == [7, "mine"]


async def test_cancelling_the_task_reaches_the_handler_where_it_waits():
    cancelled = []

    async def handler():
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    task = _eager.start(asyncio.get_running_loop(), handler(), inline=True)
    await asyncio.sleep(0)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    assert cancelled == [True]
