"""What one durable write costs on this disk: append + fdatasync against pwrite over zeros
written ahead (the audit segment's layout, ``strongroom/audit/log.py``), and
``posix_fallocate`` instead of written zeros, for a 1 kB record (a lone audit event) and a
20 kB one (a group commit under load). Prints p50 / p99 wall time and the CPU time per
write. Run it in the directory whose disk you want to know (default: the current one)::

    python3 bench/fsync_micro.py [--dir DIR] [--n 2000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def measure(path: str, size: int, n: int, layout: str) -> str:
    """``n`` durable writes of ``size`` bytes in ``layout``; a line of results."""
    record = b"x" * size
    flags = os.O_CREAT | os.O_WRONLY | os.O_TRUNC | (os.O_APPEND if layout == "append" else 0)
    fd = os.open(path, flags, 0o600)
    try:
        if layout == "zeros":
            os.write(fd, bytes(size * n + 4096))
            os.fsync(fd)
        elif layout == "fallocate":
            os.posix_fallocate(fd, 0, size * n + 4096)
            os.fsync(fd)
        times = []
        cpu0 = time.process_time()
        for i in range(n):
            t0 = time.perf_counter()
            if layout == "append":
                os.write(fd, record)
            else:
                os.pwrite(fd, record, i * size)
            os.fdatasync(fd)
            times.append(time.perf_counter() - t0)
        cpu = (time.process_time() - cpu0) / n
    finally:
        os.close(fd)
    times.sort()
    p50, p99 = times[n // 2] * 1e6, times[n * 99 // 100] * 1e6
    return f"  {LABELS[layout]:<34} p50 {p50:7.1f} us  p99 {p99:7.1f} us  CPU {cpu * 1e6:6.1f} us"


LABELS = {
    "append": "append + fdatasync",
    "zeros": "pwrite over zeros + fdatasync",
    "fallocate": "pwrite over fallocate + fdatasync",
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", type=Path, default=Path.cwd(), help="where to write (its disk)")
    p.add_argument("--n", type=int, default=2000, help="writes per measurement (2000)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="fsync-micro-") as tmp:
        for size in (1000, 20_000):
            print(f"{size}-byte records, {args.n} each:", flush=True)
            for layout in LABELS:
                print(measure(os.path.join(tmp, "segment"), size, args.n, layout), flush=True)


if __name__ == "__main__":
    main()
