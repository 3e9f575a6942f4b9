#!/usr/bin/env python3
"""Instructions executed per Encrypt in the whole app (no HTTP), counted by valgrind: a
measure of the hot path's work that a busy machine does not change.

Runs the app harness of ``hotpath_micro.py`` (a real runtime on a temporary data
directory, the signed Encrypt request, ``KmsApp`` driven on uvloop with 64 requests in
flight) twice under ``valgrind --tool=cachegrind --cache-sim=no``: once with ``--small``
batches of 64 requests and once with ``--large`` batches. Start-up (imports, the database,
the key) is the same in both, so the difference of the two instruction totals divided by
the difference in requests is the instructions per request: user space, every thread of
the process (the audit writer's included), the kernel's work (``fdatasync``, sockets) not.
Two runs of the same code agree within about 0.5 %; timing-based numbers on a shared
machine do not. ``--src`` runs another tree's ``src`` (e.g. a ``git archive`` of the
version before) to compare.

    python bench/hotpath_instructions.py                    # ~2 min quiet, far more loaded
    python bench/hotpath_instructions.py --src /tmp/before/src --fsync off

With ``--annotate FILE`` the per-function difference (``cg_diff`` of the two runs, then
``cg_annotate``) is written to FILE: where the instructions of the added requests went, by
C function.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONCURRENT = 64

# The harness run under valgrind: hotpath_micro's set-up, then BATCHES batches of 64.
HARNESS = """
import asyncio, os, sys
# The background jobs that poll every half second (the change feed, replication) read the
# database as often as the wall clock asks: a loaded machine made the count drift by 2-3 %.
os.environ["STRONGROOM_CHANGE_POLL_SECONDS"] = "3600"
sys.argv = ["hotpath_micro.py", "--sections", "app", "--n", "10"]
sys.argv += ["--operation", os.environ["HOTPATH_OPERATION"]]
sys.argv += ["--quotas", os.environ["HOTPATH_QUOTAS"]]
import hotpath_micro as hm

BATCHES = int(os.environ["HOTPATH_BATCHES"])
FSYNC = os.environ["HOTPATH_FSYNC"] == "on"
CONC = int(os.environ["HOTPATH_CONCURRENT"])


async def run(n, row, kms, rt, raw, body, statuses):
    scope = hm._scope(raw)

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    kms.startup()
    try:
        rt.audit.fsync = FSYNC
        for _ in range(2 * CONC):  # warm-up: caches, the parsed policy, the key
            await kms(scope, receive, send)
        for _ in range(BATCHES):
            await asyncio.gather(*(kms(scope, receive, send) for _ in range(CONC)))
    finally:
        await kms.shutdown()


hm.end_to_end = run
hm.main()
"""


def count(
    python: str,
    src: Path,
    batches: int,
    fsync: str,
    out: Path,
    workdir: Path,
    operation: str,
    quotas: str,
) -> int:
    """Total instructions of one harness run under cachegrind."""
    script = workdir / "harness.py"
    script.write_text(HARNESS)
    env = {
        **os.environ,
        "PYTHONPATH": f"{src}{os.pathsep}{HERE}",
        "PYTHONHASHSEED": "0",  # the same dict layouts in both runs
        "HOTPATH_BATCHES": str(batches),
        "HOTPATH_FSYNC": fsync,
        "HOTPATH_CONCURRENT": str(CONCURRENT),
        "HOTPATH_OPERATION": operation,
        "HOTPATH_QUOTAS": quotas,
    }
    argv = ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}"]
    done = subprocess.run(
        [*argv, python, str(script)], env=env, capture_output=True, text=True, cwd=HERE
    )
    if "non-200" in done.stdout and not re.search(r", 0 non-200", done.stdout):
        raise SystemExit(f"the harness got non-200 replies:\n{done.stdout[-2000:]}")
    match = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or match is None:
        raise SystemExit(f"valgrind failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return int(match.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--src", type=Path, default=HERE.parent / "src", help="the tree's src/")
    p.add_argument("--fsync", choices=["on", "off"], default="on", help="audit fsync (on)")
    p.add_argument("--small", type=int, default=5, help="batches of 64 in the first run (5)")
    p.add_argument("--large", type=int, default=25, help="batches of 64 in the second (25)")
    p.add_argument("--annotate", type=Path, help="write the per-function difference here")
    p.add_argument(
        "--operation",
        choices=["Encrypt", "Decrypt", "GenerateDataKey", "Sign", "GenerateMac"],
        default="Encrypt",
        help="the request counted (default Encrypt; Sign: ECC_NIST_P256, GenerateMac: HMAC_256)",
    )
    p.add_argument(
        "--quotas",
        choices=["on", "off"],
        default="off",
        help="request quotas (off, as kms_bench.py runs: with them on, the leases a process "
        "takes are SQL transactions in the pool, as many as the wall clock asks for, which "
        "moves the count with the machine's load)",
    )
    args = p.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind not found: apt-get install -y valgrind", file=sys.stderr)
        return 2
    if args.large <= args.small:
        p.error("--large must be more than --small")
    # The interpreter itself, not a wrapper script (pyenv's shims are shell scripts, which
    # valgrind would measure instead); in a virtual environment its own link to it, which
    # finds the environment's packages (the real file would not).
    in_venv = sys.prefix != sys.base_prefix
    python = sys.executable if in_venv else os.path.realpath(sys.executable)
    workdir = Path(tempfile.mkdtemp(prefix="hotpath_instructions-"))
    try:
        small, large = workdir / "small.out", workdir / "large.out"
        run = (python, args.src)
        a = count(*run, args.small, args.fsync, small, workdir, args.operation, args.quotas)
        b = count(*run, args.large, args.fsync, large, workdir, args.operation, args.quotas)
        requests = (args.large - args.small) * CONCURRENT
        print(
            f"{(b - a) / requests:,.0f} instructions per {args.operation} "
            f"({args.src}, audit fsync {args.fsync}, quotas {args.quotas}, "
            f"{requests} requests counted, "
            f"{CONCURRENT} in flight)"
        )
        if args.annotate is not None:
            diff = workdir / "diff.out"
            subprocess.run(["cg_diff", str(small), str(large)], stdout=diff.open("w"), check=True)
            text = subprocess.run(
                ["cg_annotate", str(diff)], capture_output=True, text=True, check=True
            ).stdout
            args.annotate.write_text(text)
            print(f"per-function difference written to {args.annotate}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
