"""``leave_loop``: a key store that waits on the network refuses to run straight on the
event loop; on the loop's bridge (``keystores.loop_bridge``) it may wait."""

from __future__ import annotations

import asyncio

import pytest

from strongroom.keystores.base import MustLeaveLoop, leave_loop
from strongroom.keystores.loop_bridge import run_bridged


def test_nothing_happens_off_the_loop() -> None:
    leave_loop()


def test_on_the_loop_it_asks_to_leave_and_a_worker_thread_may_run_it() -> None:
    async def main() -> None:
        with pytest.raises(MustLeaveLoop):
            leave_loop()
        await asyncio.get_running_loop().run_in_executor(None, leave_loop)

    asyncio.run(main())


def test_on_the_loops_bridge_it_may_stay() -> None:
    async def main() -> None:
        await run_bridged(leave_loop)

    asyncio.run(main())
