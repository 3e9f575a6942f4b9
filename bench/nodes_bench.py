#!/usr/bin/env python3
"""Several Strongroom nodes on one PostgreSQL database: Encrypt req/s for 1, 2 and 3 nodes
(64 connections in all, spread evenly, one wrk per node at once), the cost of
``strict_consistency``, and how long a DisableKey takes to reach the other nodes.

Every node is a `strongroom serve` with the default single worker, its own data directory
and port, the first node's root key and credentials, on one fresh PostgreSQL database. They
share this machine's cores with each other, with PostgreSQL and with wrk: more nodes here
means more processes on 2 cores, not more capacity.

    python3 bench/nodes_bench.py                          # 1/2/3 nodes, strict on/off, ~2 min
    python3 bench/nodes_bench.py --nodes 1,3 --duration 5 --flips 10
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from kms_bench import (  # noqa: E402
    Run,
    Target,
    run_wrk,
    start_strongroom,
    stop_all,
    strongroom_credentials,
)

PLAINTEXT = os.urandom(64)  # the size of a data key's ciphertext, as kms_bench's default
BASE_URL = os.environ.get(
    "STRONGROOM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def fresh_database() -> tuple[str, str]:
    import psycopg

    name = f"strongroom_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(BASE_URL.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{BASE_URL.rpartition('/')[0]}/{name}", name


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(BASE_URL.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


DATABASES: list[str] = []  # made here, dropped at the end


def start_nodes(workdir: Path, count: int, strict: bool) -> list[Target]:
    """``count`` nodes on a fresh database, each a Target on the same key."""
    url, name = fresh_database()
    DATABASES.append(name)
    env = {
        "STRONGROOM_DATABASE_URL": url,
        "STRONGROOM_STRICT_CONSISTENCY": "true" if strict else "false",
    }
    targets: list[Target] = []
    for i in range(count):
        name = f"of{count}-node{i}-{'strict' if strict else 'notify'}"
        if i:
            data = workdir / f"{name}-data"
            data.mkdir()
            first = workdir / f"{targets[0].name}-data"
            for shared in ("root.key", "credentials"):
                shutil.copy2(first / shared, data / shared)
                os.chmod(data / shared, 0o600)
        server = start_strongroom(workdir, 1, name=name, env=env)
        access, secret = strongroom_credentials(workdir, name)
        targets.append(Target(name, server, access, secret))
    targets[0].setup(PLAINTEXT)
    for target in targets[1:]:
        target.key_id, target.blob = targets[0].key_id, targets[0].blob
    return targets


def encrypt_all(
    targets: list[Target], connections: int, duration: float, workdir: Path
) -> list[Run]:
    """One wrk per node at once, ``connections`` spread over them."""
    share = max(1, connections // len(targets))
    with ThreadPoolExecutor(len(targets)) as pool:
        runs = pool.map(
            lambda t: run_wrk(t, "Encrypt", share, duration, PLAINTEXT, workdir, 1), targets
        )
        return list(runs)


def propagation(targets: list[Target], flips: int) -> list[float]:
    """Seconds from DisableKey returning on the first node until Encrypt is refused on the
    slowest of the others (each asked back to back), ``flips`` times."""
    from botocore.exceptions import ClientError

    clients = [t.client() for t in targets]
    writer, others = clients[0], clients[1:]
    key = targets[0].key_id
    waits = []
    for _ in range(flips):
        for client in others:  # warm: enabled everywhere
            while True:
                try:
                    client.encrypt(KeyId=key, Plaintext=b"x")
                    break
                except ClientError:
                    time.sleep(0.01)
        writer.disable_key(KeyId=key)
        began = time.monotonic()
        slowest = 0.0
        for client in others:
            while True:
                try:
                    client.encrypt(KeyId=key, Plaintext=b"x")
                except ClientError:
                    break
            slowest = max(slowest, time.monotonic() - began)
        waits.append(slowest)
        writer.enable_key(KeyId=key)
    return waits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", default="1,2,3", help="comma-separated node counts")
    parser.add_argument("--connections", type=int, default=64, help="in all (64)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run (10)")
    parser.add_argument("--flips", type=int, default=20, help="DisableKey propagations (20)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    counts = [int(n) for n in args.nodes.split(",")]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="nodes_bench-") as tmp:
        workdir = Path(tmp)
        try:
            for strict in (False, True):
                for count in counts:
                    targets = start_nodes(workdir, count, strict)
                    runs = encrypt_all(targets, args.connections, args.duration, workdir)
                    row: dict[str, Any] = {
                        "nodes": count,
                        "strict": strict,
                        "rps": round(sum(r.rps for r in runs)),
                        "p50_ms": round(max(r.p50_ms for r in runs), 2),
                        "p99_ms": round(max(r.p99_ms for r in runs), 2),
                        "ok": all(r.ok for r in runs),
                    }
                    if count > 1 and args.flips:
                        waits = propagation(targets, args.flips)
                        row["propagation_ms_median"] = round(1000 * statistics.median(waits), 1)
                        row["propagation_ms_max"] = round(1000 * max(waits), 1)
                    results.append(row)
                    print(json.dumps(row), flush=True)
                    stop_all()
        finally:
            stop_all()
            for name in DATABASES:
                drop_database(name)
    print()
    print("nodes  strict   req/s   p50 ms  p99 ms  propagation ms (median / max)  ok")
    for row in results:
        spread = (
            f"{row['propagation_ms_median']:>8} / {row['propagation_ms_max']}"
            if "propagation_ms_max" in row
            else "-"
        )
        print(
            f"{row['nodes']:>5}  {'yes' if row['strict'] else 'no':>6}  {row['rps']:>6,}"
            f"  {row['p50_ms']:>7}  {row['p99_ms']:>6}  {spread:<30} {row['ok']}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
