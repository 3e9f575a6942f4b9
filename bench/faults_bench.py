#!/usr/bin/env python3
"""What fault injection (``strongroom admin fault``) costs a request when no fault applies.

Two measures:

* in process: the pipeline's guard (``if self.rt.faults.faults:``) with no fault set, and,
  with faults set for other requests, the guard plus ``FaultTable.inject`` (a coroutine,
  four dict lookups): nanoseconds per request, the best of ``--rounds``;
* end to end (``--e2e``): Encrypt at ``--connections`` connections with wrk against one
  server (kms_bench's helpers), in alternating rounds with no fault and with a fault of
  another account (the table is not empty, so every request looks its fault up).

    PYTHONPATH=src python bench/faults_bench.py [--rounds 5] [--e2e --duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kms_bench as kb

from strongroom.server.faults import FaultTable
from strongroom.storage.ports import FaultRecord

OTHER_ACCOUNT = "999988887777"


def _guard_ns(rt: Any, n: int, rounds: int) -> float:
    """Nanoseconds per request of the pipeline's guard, and the call when the guard is true,
    inside a coroutine as in the pipeline; the empty loop's cost taken off."""

    async def guarded() -> None:
        for _ in range(n):
            if rt.faults.faults:
                await rt.faults.inject("kms", "111122223333", "Encrypt")

    async def empty() -> None:
        for _ in range(n):
            pass

    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        asyncio.run(guarded())
        t1 = time.perf_counter_ns()
        asyncio.run(empty())
        t2 = time.perf_counter_ns()
        best = min(best, ((t1 - t0) - (t2 - t1)) / n)
    return best


def in_process(n: int, rounds: int) -> dict[str, float]:
    none = SimpleNamespace(faults=FaultTable())
    other = FaultTable()
    now = datetime.now(UTC)
    other.replace(
        [
            FaultRecord(OTHER_ACCOUNT, "*", "ThrottlingException", 1.0, 0, now),
            FaultRecord("*", "Decrypt", "ThrottlingException", 1.0, 0, now),
        ]
    )
    return {
        "no fault set (guard only), ns": _guard_ns(none, n, rounds),
        "faults of other requests (guard + inject), ns": _guard_ns(
            SimpleNamespace(faults=other), n, rounds
        ),
    }


def end_to_end(duration: float, connections: int, rounds: int) -> dict[str, list[float]]:
    workdir = Path(tempfile.mkdtemp(prefix="faults-bench-"))
    server = kb.start_strongroom(workdir, workers=1)
    try:
        target = kb.Target("strongroom", server, *kb.strongroom_credentials(workdir))
        target.setup(b"x" * 64)
        data = workdir / "strongroom-data"

        def admin(*args: str) -> None:
            subprocess.run(
                [sys.executable, "-m", "strongroom.cli.main", "admin", "fault", *args,
                 "--data-dir", str(data)],
                check=True, capture_output=True,
            )  # fmt: skip

        rates: dict[str, list[float]] = {"no fault": [], "fault of another account": []}
        for _ in range(rounds):
            for name in rates:
                if name == "no fault":
                    admin("clear")
                else:
                    admin("set", "--account", OTHER_ACCOUNT, "--error", "ThrottlingException",
                          "--rate", "1")  # fmt: skip
                time.sleep(1.0)  # the server reloads its faults
                run = kb.run_wrk(
                    target, "Encrypt", connections, duration, b"x" * 64, workdir, threads=2
                )
                if not run.ok:
                    raise RuntimeError(f"{name}: {run.problem or run.errors or run.non_2xx}")
                rates[name].append(run.rps)
        return rates
    finally:
        kb.stop_all()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--n", type=int, default=1_000_000, help="requests per in-process round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--e2e", action="store_true", help="also Encrypt req/s with wrk")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    p.add_argument("--connections", type=int, default=64)
    args = p.parse_args()
    for name, ns in in_process(args.n, args.rounds).items():
        print(f"{name}: {ns:.1f}")
    if args.e2e:
        rates = end_to_end(args.duration, args.connections, args.rounds)
        for name, values in rates.items():
            shown = ", ".join(f"{v:.0f}" for v in values)
            print(
                f"Encrypt at {args.connections} connections, {name}: median "
                f"{statistics.median(values):.0f} req/s ({shown})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
