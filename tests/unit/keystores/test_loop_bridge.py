"""``keystores.loop_bridge``: synchronous code that awaits on the event loop without
blocking it."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from strongroom.keystores.loop_bridge import on_bridge, run_bridged, wait_for

REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="none")


async def doubled(x: int, delay: float) -> int:
    await asyncio.sleep(delay)
    return 2 * x


async def failing() -> None:
    await asyncio.sleep(0)
    raise ValueError("from the loop")


def test_results_come_back_and_handlers_interleave_on_the_loops_thread() -> None:
    order: list[str] = []
    loop_thread: list[int] = []

    def handler(name: str, delay: float) -> tuple[int, str]:
        assert on_bridge()
        assert threading.get_ident() == loop_thread[0]
        order.append(f"{name} waits")
        value = wait_for(doubled(len(name), delay))
        order.append(f"{name} resumes")
        return value, REQUEST.get()

    async def main() -> list[tuple[int, str]]:
        loop_thread.append(threading.get_ident())
        REQUEST.set("req-1")  # the request's context reaches the handler
        return await asyncio.gather(
            run_bridged(handler, "slow", 0.05), run_bridged(handler, "quick", 0.0)
        )

    assert asyncio.run(main()) == [(8, "req-1"), (10, "req-1")]
    # the slow one's wait did not hold up the quick one
    assert order == ["slow waits", "quick waits", "quick resumes", "slow resumes"]


def test_exceptions_cross_the_bridge_both_ways() -> None:
    caught: list[str] = []

    def handler() -> None:
        try:
            wait_for(failing())
        except ValueError as e:
            caught.append(str(e))
        raise KeyError("from the handler")

    async def main() -> None:
        with pytest.raises(KeyError, match="from the handler"):
            await run_bridged(handler)

    asyncio.run(main())
    assert caught == ["from the loop"]


def test_wait_for_off_the_bridge_is_refused() -> None:
    assert not on_bridge()
    coroutine = doubled(1, 0)
    with pytest.raises(RuntimeError, match="outside run_bridged"):
        wait_for(coroutine)
    coroutine.close()
