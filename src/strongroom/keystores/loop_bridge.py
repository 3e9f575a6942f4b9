"""Synchronous code that waits on the network without blocking the event loop.

A request handler is synchronous (services, key stores), and most run on the event loop
itself. A key store whose operation waits on the network (an external key store's proxy)
used to send its whole request to the thread pool, which costs a thread hop and GIL
hand-offs. Instead, the request pipeline runs such a handler in a greenlet on the loop
(``run_bridged``): where the handler must wait, it hands an awaitable to ``wait_for``,
which switches back to the pipeline's coroutine; the coroutine awaits it, other requests
are served meanwhile, and the greenlet resumes with the result (or the exception). The
handler's code stays synchronous and runs on the loop's thread from start to end.

``on_bridge`` tells a store whether it may wait this way; outside ``run_bridged`` (the
thread pool, jobs, admin commands) it waits with blocking calls as before.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import greenlet  # type: ignore[import-untyped]  # no stubs

__all__ = ["on_bridge", "run_bridged", "wait_for"]

T = TypeVar("T")


class _Bridged(greenlet.greenlet):  # type: ignore[misc]
    """A greenlet run by ``run_bridged``: its parent is the coroutine's greenlet."""


def on_bridge() -> bool:
    """Whether the code running now was started by ``run_bridged`` (so ``wait_for`` works)."""
    return isinstance(greenlet.getcurrent(), _Bridged)


def wait_for(awaitable: Awaitable[T]) -> T:
    """The result of ``awaitable``, awaited by the coroutine that runs this code
    (``run_bridged``); its exception is raised here. RuntimeError off the bridge."""
    current = greenlet.getcurrent()
    if not isinstance(current, _Bridged):
        raise RuntimeError("wait_for outside run_bridged")
    return cast(T, current.parent.switch(awaitable))


async def run_bridged(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` run on this thread, with every ``wait_for`` in it awaited here."""
    bridged = _Bridged(fn, parent=greenlet.getcurrent())
    bridged.gr_context = contextvars.copy_context()  # the request's, as on the loop
    asked = bridged.switch(*args)
    while not bridged.dead:
        try:
            value = await asked
        except BaseException as exc:  # noqa: BLE001  # into the handler, as if raised there
            asked = bridged.throw(exc)
        else:
            asked = bridged.switch(value)
    return cast(T, asked)
