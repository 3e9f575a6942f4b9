"""Kill -9 rounds, the long version of ``tests/compat/test_crash_safety.py``.

For each backend (SQLite in a temporary data directory; PostgreSQL in a fresh database
next to ``--postgres-url`` or $STRONGROOM_TEST_POSTGRES_URL, dropped afterwards) and each
worker count, ``--rounds`` rounds: ``--threads`` threads of mixed writes (CreateKey,
CreateAlias, TagResource, PutKeyPolicy, CreateGrant, Encrypt, DisableKey, EnableKey,
ScheduleKeyDeletion), SIGKILL to the server's whole process group at a random moment, a
restart on the same storage, then the check: every acknowledged write is there, every
acknowledged ciphertext decrypts, every acknowledged request has its audit event, and
``strongroom audit verify`` passes. Prints one line per round and a summary; exits 1 if
any round lost something.

    PYTHONPATH=src python3 tools/crash_rounds.py --rounds 5
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "compat"), str(ROOT / "src")]
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

from _crash import crash_rounds  # noqa: E402

import conftest  # noqa: E402  (the test helpers: the server starter, fresh databases)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per backend and workers")
    parser.add_argument("--threads", type=int, default=8, help="writer threads (default 8)")
    parser.add_argument("--workers", default="1,2", help="worker counts (default 1,2)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--kill-after", default="1.0,4.0", help="seconds: min,max")
    parser.add_argument("--postgres-url", default=os.environ.get(conftest.POSTGRES_ENV))
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    low, high = (float(x) for x in args.kill_after.split(","))
    clean = total = 0
    started = time.monotonic()
    for backend in args.backends.split(","):
        if backend == "postgresql" and not args.postgres_url:
            print("postgresql: skipped (no --postgres-url)")
            continue
        for workers in (int(w) for w in args.workers.split(",")):
            with tempfile.TemporaryDirectory(prefix="crash-rounds-") as tmp:
                url = name = None
                if backend == "postgresql":
                    url, name = conftest._fresh_postgres_database(args.postgres_url)
                try:
                    for result in crash_rounds(
                        Path(tmp) / "data",
                        url,
                        [workers] * args.rounds,
                        threads=args.threads,
                        kill_after=(low, high),
                        rng=rng,
                    ):
                        total += 1
                        ok = not result.problems and not result.errors_during_load
                        clean += ok
                        print(f"round {total}: {result.line()}", flush=True)
                finally:
                    if name:
                        conftest._drop_postgres_database(args.postgres_url, name)
    print(
        f"{clean} of {total} rounds clean ({time.monotonic() - started:.0f} s, "
        f"{args.threads} writer threads)"
    )
    return 0 if clean == total else 1


if __name__ == "__main__":
    sys.exit(main())
