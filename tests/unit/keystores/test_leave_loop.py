"""``leave_loop``: a key store that waits on the network refuses to run on the event loop."""

from __future__ import annotations

import asyncio

import pytest

from strongroom.keystores.base import MustLeaveLoop, leave_loop


def test_nothing_happens_off_the_loop() -> None:
    leave_loop()


def test_on_the_loop_it_asks_to_leave_and_a_worker_thread_may_run_it() -> None:
    async def main() -> None:
        with pytest.raises(MustLeaveLoop):
            leave_loop()
        await asyncio.get_running_loop().run_in_executor(None, leave_loop)

    asyncio.run(main())
