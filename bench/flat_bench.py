#!/usr/bin/env python3
"""Issue 17's leftovers of "flat as the data grows" (bench/README "Session 10"):

``createkey`` — CreateKey's store transaction (the quota check, the key's insert, the
commit) on an empty database and on one holding ``--keys`` customer managed keys of the
account, on SQLite and PostgreSQL. The keys are written as rows at revision 0016, then the
schema goes to this tree's head (a migration that counts them, when there is one), so two
source trees measure the same data. Runs ``--creates`` transactions through
``services.key_records.insert_key`` (what CreateKey runs in its transaction; no material,
so no key store) and prints, per size: the quota check's own time, the time in the
transaction before the commit (wall), and the CPU time of the whole transaction, p50.

``reads`` — the store alone, SQLite: ``--readers`` processes each reading one key by ARN
per transaction (what a key cache miss does first) for ``--seconds``, with and without a
process that commits a key insert in a loop meanwhile (a writer, ``synchronous=FULL``),
each way a miss could begin: ``transaction()`` (BEGIN IMMEDIATE, before) and ``read()``
(BEGIN, after). Prints reads a second (all readers) and the p99 of one read.

``grants`` — CreateGrant's two counts (the key's grants, and the grantee's on the key) with
1,000 and 50,000 (the default quota) grants on one key and 100,000 grants on another key,
SQLite and PostgreSQL, p50 of 50.

``scrape`` — ``SqlStore.counts`` (the database's part of a /metrics scrape: keys by state,
grants, live role sessions) on an empty database and on one of ``--keys`` keys, SQLite and
PostgreSQL, p50 and p90 of ``--scrapes``.

``cold`` — Encrypt with keys no worker has cached: ``strongroom serve --workers 2`` on a
data directory of ``--keys`` keys (``memory_bench.grow_keys``), ``--connections``
connections (spread over the workers by the kernel) each sending Encrypt with its share of
the first ``--cold`` keys, each key once: every request is a cache miss on its worker, and
both workers miss at once. Prints requests a second.

    python3 bench/flat_bench.py createkey --backends sqlite,postgresql --keys 100000
    python3 bench/flat_bench.py reads --keys 100000 --seconds 5
    python3 bench/flat_bench.py scrape --keys 100000
    python3 bench/flat_bench.py cold --workdir /tmp/flatcold --keys 100000 --cold 4000
    PYTHONPATH=/tmp/before/src python3 bench/flat_bench.py cold ... --src /tmp/before/src
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

ACCOUNT, REGION = "111122223333", "us-east-1"
CHUNK = 10_000


def _key(n: int, created: datetime) -> Any:
    from strongroom.domain.enums import KeySpec, KeyUsage
    from strongroom.services.key_records import new_key_record

    return new_key_record(
        ACCOUNT,
        REGION,
        str(uuid.UUID(int=n, version=4)),
        key_spec=KeySpec.SYMMETRIC_DEFAULT,
        key_usage=KeyUsage.ENCRYPT_DECRYPT,
        description="",
        policy="{}",
        created=created,
    )


def _fill(url: str, n: int) -> None:
    """``n`` customer managed keys as rows at revision 0016, then the schema at head."""
    import sqlalchemy as sa

    from strongroom.storage import migrate, schema
    from strongroom.storage.sql import SqlStore
    from strongroom.storage.sql.keys import _key_values

    engine = sa.create_engine(url)
    migrate.upgrade(engine, "0016")
    created = datetime.now(UTC)
    with engine.begin() as conn:
        for start in range(0, n, CHUNK):
            rows = [_key_values(_key(i, created)) for i in range(start, min(n, start + CHUNK))]
            conn.execute(schema.keys.insert(), rows)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE keys")
    engine.dispose()
    store = SqlStore(url)
    store.migrate()
    store.close()


def measure_creates(url: str, creates: int) -> dict[str, float]:
    from strongroom.services.key_records import insert_key
    from strongroom.storage.sql import SqlStore

    store = SqlStore(url)
    with store.transaction() as tx:
        tx.quotas.put_value(ACCOUNT, "AWS KMS keys", 10_000_000, time.time())
    check, in_tx, cpu = [], [], []
    try:
        for i in range(creates):
            key = _key(10_000_000 + i, datetime.now(UTC))
            c0 = time.process_time()
            with store.transaction() as tx:
                t0 = time.perf_counter()
                tx.quotas.customer_managed_keys(ACCOUNT, REGION)
                t1 = time.perf_counter()
                insert_key(None, tx, key, None, ())  # type: ignore[arg-type]
                t2 = time.perf_counter()
            cpu.append(time.process_time() - c0)
            check.append(t1 - t0)
            in_tx.append(t2 - t1)
    finally:
        store.close()
    ms = 1000.0
    return {
        "count_ms_p50": statistics.median(check) * ms,
        "insert_key_ms_p50": statistics.median(in_tx) * ms,
        "insert_key_ms_p90": statistics.quantiles(in_tx, n=10)[-1] * ms,
        "transaction_cpu_ms_p50": statistics.median(cpu) * ms,
    }


@contextlib.contextmanager
def _database(backend: str) -> Iterator[str]:
    """The URL of a new, empty database of ``backend`` (sqlite: a file in a temporary
    directory; postgresql: a database of its own), gone afterwards."""
    from nodes_bench import drop_database, fresh_database

    tmp = Path(tempfile.mkdtemp(prefix="flatbench-"))
    name = None
    try:
        if backend == "sqlite":
            url = f"sqlite:///{tmp}/db.sqlite"
        else:
            url, name = fresh_database()
        yield url
    finally:
        if name:
            drop_database(name)
        shutil.rmtree(tmp, ignore_errors=True)


def createkey(args: argparse.Namespace) -> None:
    for backend in args.backends.split(","):
        for size in (0, args.keys):
            with _database(backend) as url:
                t0 = time.perf_counter()
                _fill(url, size)
                grown = time.perf_counter() - t0
                result = measure_creates(url, args.creates)
            cells = "  ".join(f"{k} {v:7.3f}" for k, v in result.items())
            print(f"{backend:<10} keys {size:>7} (grown in {grown:5.1f} s)  {cells}", flush=True)


def scrape(args: argparse.Namespace) -> None:
    """``SqlStore.counts`` (what every /metrics scrape reads from the database), p50 and p90
    of ``--scrapes``, on an empty database and on one of ``--keys`` keys."""
    from strongroom.storage.sql import SqlStore

    for backend in args.backends.split(","):
        for size in (0, args.keys):
            with _database(backend) as url:
                _fill(url, size)
                store = SqlStore(url)
                took = []
                for _ in range(args.scrapes):
                    t0 = time.perf_counter()
                    states, _, _ = store.counts(datetime.now(UTC))
                    took.append(time.perf_counter() - t0)
                store.close()
            p50 = statistics.median(took) * 1000
            p90 = statistics.quantiles(took, n=10)[-1] * 1000
            print(
                f"{backend:<10} keys {size:>7}  counts() p50 {p50:8.3f} ms  "
                f"p90 {p90:8.3f} ms  {states}"
            )


async def _encrypt_each(
    port: int, signer: Any, ids: list[str], connections: int
) -> tuple[int, int, float]:
    """Encrypt once with each key, over ``connections`` connections at once; (requests,
    replies not 200, seconds)."""
    from memory_bench import exchange

    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(connections)]
    bad = total = 0

    async def one(i: int) -> None:
        nonlocal bad, total
        reader, writer = conns[i]
        for key_id in ids[i :: len(conns)]:
            if await exchange(reader, writer, signer.encrypt(key_id)) != 200:
                bad += 1
            total += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(len(conns))))
    took = time.perf_counter() - t0
    for _, writer in conns:
        writer.close()
    return total, bad, took


def cold(args: argparse.Namespace) -> None:
    from memory_bench import Signer, grow_keys, key_ids, start_server, stop_server

    data_dir = args.workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    took = grow_keys(data_dir, args.keys)
    if took:
        print(f"grew {args.keys} keys in {took:.0f} s", flush=True)
    run_dir = args.workdir / "run"
    trees = [(label, src) for label, src in (("a", args.src), ("b", args.src_b)) if src]
    for repeat in range(args.repeat):  # a, b, a, b: interleaved, so both see the same load
        for label, src in trees:
            shutil.rmtree(run_dir, ignore_errors=True)
            shutil.copytree(data_dir, run_dir)
            proc, port = start_server(run_dir, 2, src, args.workdir / "server.log")
            try:
                signer = Signer(run_dir, port)
                ids = key_ids(args.keys)[: args.cold]

                total, bad, secs = asyncio.run(_encrypt_each(port, signer, ids, args.connections))
                print(
                    f"{label} ({src}) run {repeat + 1}: {total} cold Encrypt in {secs:.1f} s = "
                    f"{total / secs:.0f} req/s, {bad} not 200",
                    flush=True,
                )
            finally:
                stop_server(proc)


_READER = """
import random, sys, time
from strongroom.storage.sql import SqlStore
url, how, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
store = SqlStore(url)
begin = store.read if how == "read" else store.transaction
arns = [f"arn:aws:kms:us-east-1:111122223333:key/{i}" for i in sys.argv[5:]]
times = []
end = time.perf_counter() + seconds
while time.perf_counter() < end:
    t0 = time.perf_counter()
    with begin() as tx:
        tx.keys.get(random.choice(arns))
    times.append(time.perf_counter() - t0)
times.sort()
print(len(times), times[int(len(times) * 0.99)])
"""

_WRITER = """
import sys, time, uuid
from collections.abc import Iterator
from datetime import UTC, datetime
sys.path.insert(0, sys.argv[3])
from flat_bench import _key
from strongroom.storage.sql import SqlStore
store = SqlStore(sys.argv[1])
end = time.perf_counter() + float(sys.argv[2])
n = 0
while time.perf_counter() < end:
    with store.transaction() as tx:
        tx.keys.insert(_key(20_000_000 + n + uuid.uuid4().int % 10**9, datetime.now(UTC)))
    n += 1
print(n)
"""


def reads(args: argparse.Namespace) -> None:
    import os
    import subprocess

    tmp = Path(tempfile.mkdtemp(prefix="flatreads-"))
    url = f"sqlite:///{tmp}/db.sqlite"
    try:
        _fill(url, args.keys)
        ids = [str(uuid.UUID(int=i, version=4)) for i in range(0, args.keys, 97)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        for writer in (False, True):
            for how in ("transaction", "read"):
                readers = [
                    subprocess.Popen(
                        [sys.executable, "-c", _READER, url, how, str(args.seconds), "0", *ids],
                        stdout=subprocess.PIPE,
                        text=True,
                        env=env,
                    )
                    for _ in range(args.readers)
                ]
                w = None
                if writer:
                    w = subprocess.Popen(
                        [sys.executable, "-c", _WRITER, url, str(args.seconds), str(HERE)],
                        stdout=subprocess.PIPE,
                        text=True,
                        env=env,
                    )
                outs = [r.communicate()[0].split() for r in readers]
                writes = int(w.communicate()[0]) if w else 0
                total = sum(int(o[0]) for o in outs)
                p99 = max(float(o[1]) for o in outs) * 1000
                print(
                    f"{how:<12} writer {'on ' if writer else 'off'}: "
                    f"{total / args.seconds:8.0f} reads/s ({args.readers} processes), "
                    f"p99 {p99:6.2f} ms; writer commits/s {writes / args.seconds:6.0f}",
                    flush=True,
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def grants(args: argparse.Namespace) -> None:
    from strongroom.domain.models import Grant
    from strongroom.storage.sql import SqlStore

    def grant(n: int, arn: str, created: datetime) -> Grant:
        return Grant(
            grant_id=f"{n:064x}",
            key_arn=arn,
            grantee_principal=f"arn:aws:iam::{ACCOUNT}:role/g{n % 7}",
            operations=("Encrypt",),
            issuing_account=f"arn:aws:iam::{ACCOUNT}:root",
            creation_date=created,
        )

    for backend in args.backends.split(","):
        with _database(backend) as url:
            _fill(url, 0)
            store = SqlStore(url)
            now = datetime.now(UTC)
            used, other = _key(1, now), _key(2, now)
            n = 0
            with store.transaction() as tx:
                tx.keys.insert(used)
                tx.keys.insert(other)
                for _ in range(args.other):
                    tx.grants.insert(grant(n, other.arn, now))
                    n += 1
            have = 0
            for size in (int(x) for x in args.sizes.split(",")):
                with store.transaction() as tx:
                    for _ in range(size - have):
                        tx.grants.insert(grant(n, used.arn, now))
                        n += 1
                have = size
                if backend == "postgresql":
                    with store.engine.connect().execution_options(
                        isolation_level="AUTOCOMMIT"
                    ) as conn:
                        conn.exec_driver_sql("VACUUM ANALYZE grants")
                per_key, per_grantee = [], []
                for _ in range(50):
                    with store.transaction() as tx:
                        t0 = time.perf_counter()
                        tx.grants.count(used.arn)
                        t1 = time.perf_counter()
                        tx.grants.count(used.arn, f"arn:aws:iam::{ACCOUNT}:role/g3")
                        t2 = time.perf_counter()
                    per_key.append(t1 - t0)
                    per_grantee.append(t2 - t1)
                print(
                    f"{backend:<10} {size:>6} grants on the key: count of the key's "
                    f"{statistics.median(per_key) * 1000:6.2f} ms, of the grantee's "
                    f"{statistics.median(per_grantee) * 1000:6.2f} ms (p50)",
                    flush=True,
                )
            store.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    c = sub.add_parser("createkey")
    c.add_argument("--backends", default="sqlite,postgresql")
    c.add_argument("--keys", type=int, default=100_000)
    c.add_argument("--creates", type=int, default=200)
    r = sub.add_parser("reads")
    r.add_argument("--keys", type=int, default=100_000)
    r.add_argument("--readers", type=int, default=2)
    r.add_argument("--seconds", type=float, default=5.0)
    g = sub.add_parser("grants")
    g.add_argument("--backends", default="sqlite,postgresql")
    g.add_argument("--sizes", default="1000,50000", help="grants on the key, growing")
    g.add_argument("--other", type=int, default=100_000, help="grants on another key")
    s = sub.add_parser("scrape")
    s.add_argument("--backends", default="sqlite,postgresql")
    s.add_argument("--keys", type=int, default=100_000)
    s.add_argument("--scrapes", type=int, default=50)
    k = sub.add_parser("cold")
    k.add_argument("--workdir", type=Path, required=True)
    k.add_argument("--keys", type=int, default=100_000)
    k.add_argument("--cold", type=int, default=4000)
    k.add_argument("--connections", type=int, default=16)
    k.add_argument("--repeat", type=int, default=2)
    k.add_argument("--src", type=Path, default=HERE.parent / "src", help="tree a")
    k.add_argument("--src-b", type=Path, default=None, help="tree b, alternating with a")
    args = p.parse_args()
    run = {"createkey": createkey, "reads": reads, "grants": grants, "scrape": scrape, "cold": cold}
    run[args.what](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
