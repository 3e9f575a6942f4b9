#!/usr/bin/env python3
"""Encrypt req/s with and without the audit trail's life cycle (digests, roll-over,
compression), in one run: the same signed Encrypt replayed by ``wrk`` (the machinery of
``kms_bench.py``) against, in turn:

* ``before``  the server of ``--baseline-src`` (a ``src/`` of the version before the life
              cycle, e.g. ``git archive <commit> src | tar -x -C /tmp/before``)
* ``after``   this tree's server with the default settings (a digest an hour, 64 MiB
              segments): what changes on the hot path is one comparison per append
* ``busy``    this tree's server rolling over every 4 MiB (about every half second at
              8,000 req/s) with a digest every second: roll-overs, digests and gzip of the
              closed segments all run while it serves (off the event loop, but on the same
              two cores)

The configurations alternate, ``--rounds`` times, so that noise from other sessions falls on
all of them alike; the median of each is printed.

    python3 bench/audit_bench.py --baseline-src /tmp/before/src            # ~2 min
    python3 bench/audit_bench.py --baseline-src /tmp/before/src --rounds 5 --duration 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kms_bench as kb

SRC = Path(__file__).resolve().parent.parent / "src"
PLAINTEXT = b"x" * 256


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline-src", type=Path, required=True, help="src/ of the version before")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--connections", default="64,1")
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args(argv)
    configs = {
        "before": {"PYTHONPATH": str(args.baseline_src.resolve())},
        "after": {"PYTHONPATH": str(SRC)},
        "busy": {
            "PYTHONPATH": str(SRC),
            "STRONGROOM_AUDIT_SEGMENT_BYTES": str(4 << 20),
            "STRONGROOM_AUDIT_DIGEST_SECONDS": "1",
        },
    }
    connections = [int(c) for c in args.connections.split(",")]
    results: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="audit_bench-") as tmp:
        workdir = Path(tmp)
        targets = {}
        try:
            for name, env in configs.items():
                server = kb.start_strongroom(workdir, args.workers, name=name, env=env)
                target = kb.Target(name, server, *kb.strongroom_credentials(workdir, name))
                target.setup(PLAINTEXT)
                targets[name] = target
            for round_ in range(args.rounds):
                for c in connections:
                    for name, target in targets.items():
                        time.sleep(1.0)  # the last run's housekeeping settles
                        run = kb.run_wrk(target, "Encrypt", c, args.duration, PLAINTEXT, workdir, 1)
                        if not run.ok:
                            print(f"!! {name} c={c}: {run.problem or run.errors}", flush=True)
                            continue
                        results.setdefault((name, c), []).append(run.rps)
                        print(
                            f"round {round_ + 1} {name:6} c={c:<3} {run.rps:8.0f} req/s "
                            f"p99 {run.p99_ms:6.2f} ms  other {run.other_cpu:.2f}",
                            flush=True,
                        )
            busy = workdir / "busy-data" / "audit"
            rolled = len(list(busy.glob("*.log*")))
            digests = len(list((busy / "digests").glob("*.json")))
        finally:
            kb.stop_all()
    print(f"\nmedian Encrypt req/s over {args.rounds} rounds of {args.duration:g} s")
    for c in connections:
        base = statistics.median(results.get(("before", c), [0.0])) or 1.0
        row = []
        for name in configs:
            value = statistics.median(results.get((name, c), [0.0]))
            row.append(f"{name} {value:7.0f} ({value / base:.3f})")
        print(f"c={c:<3} " + "   ".join(row))
    print(f"busy: {rolled} segments, {digests} digests written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
