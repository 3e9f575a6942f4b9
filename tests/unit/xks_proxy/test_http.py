"""The proxy's HTTP protocol: a response's writes go out as one."""

from __future__ import annotations

import asyncio
from typing import Any

from strongroom.xks_proxy.http import JoinedWrites


class _Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else None


async def _turn() -> None:
    await asyncio.sleep(0)


def test_writes_of_one_loop_turn_are_one_write() -> None:
    async def main() -> _Transport:
        transport = _Transport()
        joined = JoinedWrites(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        joined.write(b"HTTP/1.1 200 OK\r\n\r\n")
        joined.write(b"{}")
        assert transport.writes == []
        await _turn()
        joined.write(b"next")
        await _turn()
        assert joined.get_extra_info("peername") == ("127.0.0.1", 1)
        return transport

    assert asyncio.run(main()).writes == [b"HTTP/1.1 200 OK\r\n\r\n{}", b"next"]


def test_close_writes_what_is_held_first() -> None:
    async def main() -> _Transport:
        transport = _Transport()
        joined = JoinedWrites(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        joined.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        joined.close()
        await _turn()
        return transport

    transport = asyncio.run(main())
    assert transport.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\n"] and transport.closed
