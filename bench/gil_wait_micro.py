#!/usr/bin/env python3
"""How long a group of audit events waits to be durable while the event loop is busy, by
the interpreter's switch interval (``sys.setswitchinterval``).

With ``audit_fsync`` on, the audit writer thread takes each group from a queue, chains and
writes it, syncs it, and wakes its requests through the loop. It needs the GIL to run Python
after taking the group and again after the sync; while the loop thread serves other
requests it holds the GIL, and a waiting thread gets it only when the loop releases it or,
at the latest, after the switch interval (5 ms by default), when the interpreter makes the
running thread let go. So under load a group can wait up to two switch intervals beyond its
sync, and its requests with it: the tail latency at 64 connections.

Here an ``AuditLog`` (fsync on, in a temporary directory) commits one event at a time while
``--busy`` tasks keep the loop busy (each ~100 µs of Python a turn), and the time from
``commit`` to its future's completion is collected, for each ``--intervals`` value in turn,
``--rounds`` times alternating. ``fdatasync`` is replaced by a sleep of ``--sync-us`` (it
releases the GIL as the real call does) so that the disk's own variance stays out; with
``--real-sync`` the real call runs.

    python bench/gil_wait_micro.py [--intervals 5,0.5] [--busy 8] [--commits 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path


async def measure(interval_ms: float, busy: int, commits: int, directory: Path) -> list[float]:
    """Milliseconds from commit to durable, for ``commits`` events, with ``busy`` tasks."""
    from strongroom.audit.log import AuditLog

    sys.setswitchinterval(interval_ms / 1000)
    log = AuditLog(directory, fsync=True)
    log.start()
    await asyncio.sleep(0.3)  # the zeros written ahead
    running = True

    async def work() -> None:  # a request being served: Python, then a turn of the loop
        while running:
            total = 0
            for i in range(3000):
                total += i
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(work()) for _ in range(busy)]
    waits = []
    try:
        for _ in range(commits):
            started = time.perf_counter()
            future = log.commit({"eventName": "Encrypt", "padding": "x" * 800}, alone=False)
            assert future is not None
            await future
            waits.append((time.perf_counter() - started) * 1000)
    finally:
        running = False
        await asyncio.gather(*tasks)
        log.stop()
    return waits


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--intervals", default="5,0.5", help="switch intervals in ms (5,0.5)")
    p.add_argument("--busy", type=int, default=8, help="tasks keeping the loop busy (8)")
    p.add_argument("--commits", type=int, default=200, help="events per measurement (200)")
    p.add_argument("--rounds", type=int, default=2, help="measurements per interval (2)")
    p.add_argument("--sync-us", type=float, default=200, help="fdatasync stand-in, µs (200)")
    p.add_argument("--real-sync", action="store_true", help="call the real fdatasync")
    args = p.parse_args(argv)
    import uvloop

    if not args.real_sync:
        seconds = args.sync_us / 1e6
        os.fdatasync = lambda fd: time.sleep(seconds)  # type: ignore[assignment]
    intervals = [float(x) for x in args.intervals.split(",") if x]
    workdir = Path(tempfile.mkdtemp(prefix="gil_wait-"))
    results: dict[float, list[float]] = {i: [] for i in intervals}
    try:
        for r in range(args.rounds):
            for interval in intervals:
                directory = workdir / f"{r}-{interval}"
                results[interval] += uvloop.run(
                    measure(interval, args.busy, args.commits, directory)
                )
    finally:
        sys.setswitchinterval(0.005)
        shutil.rmtree(workdir, ignore_errors=True)
    sync = "real fdatasync" if args.real_sync else f"fdatasync = {args.sync_us:g} µs sleep"
    print(f"commit -> durable, ms ({args.busy} busy tasks, {sync}):")
    for interval, waits in results.items():
        w = sorted(waits)
        print(
            f"  switch interval {interval:g} ms: p50 {statistics.median(w):6.2f}  "
            f"p90 {w[int(0.9 * len(w))]:6.2f}  p99 {w[int(0.99 * len(w))]:6.2f}  "
            f"max {w[-1]:6.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
