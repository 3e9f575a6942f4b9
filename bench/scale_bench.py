#!/usr/bin/env python3
"""As the data grows: Strongroom on an empty database against the same server after the
data grew (by default 100,000 keys, 20,000 aliases and 1,000 grants on the key used), on
SQLite and on PostgreSQL, in one run.

For each backend and size, on a fresh data directory (and a fresh PostgreSQL database):

1. a first ``strongroom serve`` makes the schema and the admin credentials; the key the
   benchmark uses is created through the API, then the server stops;
2. the data grows, written in this process through the services a start uses, not through
   100,000 API calls: the keys through the seed path (``services.seeding.apply_seed``, one
   transaction, so they share one creation date, as a seed file's keys do; the first
   ``--aliases`` of them get an alias each), the grants through the store;
3. ``strongroom serve`` starts again: the time from its start to the first ``/health`` 200;
4. Encrypt with wrk at ``--connections`` (``kms_bench.run_wrk``: the same signed requests);
5. ListKeys, ListAliases and ListGrants (on the key used): a walk through every page
   (total time, pages, the mean time of a page in the first and last tenth of the walk),
   then the first page and a page 90% into the listing (its marker from the walk), each
   ``--repeat`` times, p50. The times are a boto3 client's (its own cost is in each).

The targets (bench/README "Session 9"): Encrypt within 10% of the empty database's rate;
the deep page about as fast as the first; the walk's last pages as fast as its first.

    python3 bench/scale_bench.py                       # both backends, ~10 minutes
    python3 bench/scale_bench.py --backends sqlite --keys 20000 --duration 5
    python3 bench/scale_bench.py --json /tmp/scale.json
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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from kms_bench import (  # noqa: E402
    REGION,
    Run,
    Target,
    machine,
    quiet_check,
    run_wrk,
    start_strongroom,
    stop,
    stop_all,
    strongroom_credentials,
)
from nodes_bench import drop_database, fresh_database  # noqa: E402

PLAINTEXT = os.urandom(64)  # as kms_bench's default
ACCOUNT = "111122223333"
GRANTEES = 10  # the grants' grantees (CreateGrant allows 500 grants a grantee on a key)


@dataclass
class Listing:
    """One List operation's times (ms) on one database."""

    operation: str
    items: int = 0
    pages: int = 0
    walk_s: float = 0.0
    walk_page_limit: int = 0
    first_tenth_ms: float = 0.0  # mean page time in the first tenth of the walk
    last_tenth_ms: float = 0.0  # and in the last tenth
    first_page_ms: float = 0.0  # p50, Limit 100
    deep_page_ms: float = 0.0  # p50, Limit 100, the page 90% into the listing


@dataclass
class Result:
    backend: str
    size: str  # "empty" or "grown"
    keys: int = 0
    aliases: int = 0
    grants: int = 0
    grow_s: float = 0.0
    startup_s: list[float] = field(default_factory=list)  # start to /health 200
    encrypt: dict[str, Any] = field(default_factory=dict)
    listings: list[Listing] = field(default_factory=list)
    other_cpu: float = 0.0  # cores busy elsewhere before the run: noise


# --- the data ------------------------------------------------------------------------------


def settings_for(data_dir: Path, database_url: str | None) -> Any:
    from strongroom.server.settings import load_settings

    return load_settings(data_dir=data_dir, database_url=database_url)


def grow(settings: Any, key_arn: str, keys: int, aliases: int, grants: int) -> float:
    """Add ``keys`` keys (through the seed path; the first ``aliases`` with an alias each)
    and ``grants`` grants on ``key_arn`` (through the store); the seconds it took."""
    from strongroom.domain.enums import KeySpec, KeyUsage
    from strongroom.domain.ids import new_grant_id, new_key_id
    from strongroom.domain.models import Grant
    from strongroom.server.wiring import build_core
    from strongroom.services.seed_file import SeedFile, SeedKey
    from strongroom.services.seeding import apply_seed

    began = time.monotonic()
    core = build_core(settings)
    try:
        entries = tuple(
            SeedKey(
                index=i,
                key_id=new_key_id(),
                account=ACCOUNT,
                region=REGION,
                key_spec=KeySpec.SYMMETRIC_DEFAULT,
                key_usage=KeyUsage.ENCRYPT_DECRYPT,
                description=None,
                enabled=None,
                material=None,
                aliases=(f"alias/scale/{i:06d}",) if i < aliases else None,
                tags=None,
                policy=None,
                bypass_policy_lockout_safety_check=False,
                rotation=None,
            )
            for i in range(keys)
        )
        if entries:
            apply_seed(core, SeedFile(entries))
        now = datetime.now(UTC)
        with core.store.transaction() as tx:
            for i in range(grants):
                tx.grants.insert(
                    Grant(
                        grant_id=new_grant_id(),
                        key_arn=key_arn,
                        grantee_principal=f"arn:aws:iam::{ACCOUNT}:role/scale-{i % GRANTEES}",
                        operations=("Decrypt", "Encrypt"),
                        issuing_account=f"arn:aws:iam::{ACCOUNT}:root",
                        creation_date=now,
                    )
                )
    finally:
        core.store.close()
    return time.monotonic() - began


# --- the measurements ----------------------------------------------------------------------


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    out = call()
    return (time.perf_counter() - began) * 1000, out


def walk(list_page: Callable[[str | None, int], tuple[int, str | None]], limit: int) -> Any:
    """Every page of a listing: (ms per page, items, the marker of each page)."""
    times: list[float] = []
    markers: list[str | None] = [None]
    items = 0
    while True:
        ms, (count, marker) = timed(lambda: list_page(markers[-1], limit))
        times.append(ms)
        items += count
        if marker is None:
            return times, items, markers
        markers.append(marker)


def measure_listing(
    operation: str,
    list_page: Callable[[str | None, int], tuple[int, str | None]],
    walk_limit: int,
    repeat: int,
) -> Listing:
    listing = Listing(operation, walk_page_limit=walk_limit)
    began = time.monotonic()
    times, listing.items, _ = walk(list_page, walk_limit)
    listing.walk_s = time.monotonic() - began
    listing.pages = len(times)
    tenth = max(1, len(times) // 10)
    listing.first_tenth_ms = statistics.fmean(times[:tenth])
    listing.last_tenth_ms = statistics.fmean(times[-tenth:])
    # The pages of 100 (every List operation's default or maximum), first and 90% in.
    _, _, markers = walk(list_page, 100)
    deep = markers[int(len(markers) * 0.9)]
    list_page(None, 100), list_page(deep, 100)  # warm
    listing.first_page_ms = statistics.median(
        timed(lambda: list_page(None, 100))[0] for _ in range(repeat)
    )
    listing.deep_page_ms = statistics.median(
        timed(lambda: list_page(deep, 100))[0] for _ in range(repeat)
    )
    return listing


def listers(kms: Any, key_id: str) -> dict[str, Any]:
    """Each List operation as list_page(marker, limit) -> (items, next marker)."""

    def call(method: Callable[..., dict[str, Any]], items: str, **fixed: Any) -> Any:
        def list_page(marker: str | None, limit: int) -> tuple[int, str | None]:
            extra = {} if marker is None else {"Marker": marker}
            reply = method(Limit=limit, **fixed, **extra)
            return len(reply[items]), reply.get("NextMarker")

        return list_page

    return {
        "ListKeys": (call(kms.list_keys, "Keys"), 1000),
        "ListAliases": (call(kms.list_aliases, "Aliases"), 100),
        "ListGrants": (call(kms.list_grants, "Grants", KeyId=key_id), 100),
    }


def started(workdir: Path, workers: int, env: dict[str, str]) -> tuple[Any, float]:
    """``strongroom serve`` and the seconds from its start to the first /health 200."""
    began = time.monotonic()
    server = start_strongroom(workdir, workers, env=env)
    return server, time.monotonic() - began


@dataclass
class Database:
    backend: str
    url: str | None = None
    name: str | None = None

    @classmethod
    def fresh(cls, backend: str) -> Database:
        if backend == "sqlite":
            return cls(backend)
        url, name = fresh_database()
        return cls(backend, url, name)

    def drop(self) -> None:
        if self.name is not None:
            drop_database(self.name)


def run_one(backend: str, size: str, args: argparse.Namespace, workdir: Path) -> Result:
    grown = size == "grown"
    result = Result(backend, size)
    result.other_cpu = quiet_check()
    db = Database.fresh(backend)
    env = {} if db.url is None else {"STRONGROOM_DATABASE_URL": db.url}
    data_dir = workdir / "strongroom-data"
    shutil.rmtree(data_dir, ignore_errors=True)
    try:
        server, _ = started(workdir, args.workers, env)
        access, secret = strongroom_credentials(workdir)
        target = Target(f"{backend}-{size}", server, access, secret)
        kms = target.client()
        meta = kms.create_key(Description="scale_bench")["KeyMetadata"]
        target.key_id, key_arn = meta["KeyId"], meta["Arn"]
        stop(server)
        if grown:
            result.keys, result.aliases = args.keys, min(args.aliases, args.keys)
            result.grants = args.grants
            settings = settings_for(data_dir, db.url)
            # The key used is one of --keys: 100,000 is AWS's quota of keys a Region.
            result.grow_s = grow(settings, key_arn, args.keys - 1, result.aliases, args.grants)
            print(f"  {backend}: grew the data in {result.grow_s:.1f} s", flush=True)
        for i in range(args.starts):
            server, seconds = started(workdir, args.workers, env)
            result.startup_s.append(seconds)
            if i + 1 < args.starts:
                stop(server)
        target.server = server
        run: Run = run_wrk(
            target, "Encrypt", args.connections, args.duration, PLAINTEXT, workdir, args.threads
        )
        if not run.ok:
            raise RuntimeError(f"{backend} {size}: Encrypt under wrk: {run.problem or run.errors}")
        result.encrypt = {
            "rps": run.rps,
            "p50_ms": run.p50_ms,
            "p99_ms": run.p99_ms,
            "server_cpu": run.server_cpu,
            "other_cpu": run.other_cpu,
        }
        kms = target.client()
        for operation, (list_page, limit) in listers(kms, target.key_id).items():
            result.listings.append(measure_listing(operation, list_page, limit, args.repeat))
        stop(server)
    finally:
        stop_all()
        db.drop()
    return result


# --- report --------------------------------------------------------------------------------


def print_results(results: list[Result]) -> None:
    print()
    head = f"{'backend':10} {'size':6} {'start→/health s':>16} {'Encrypt req/s':>14} {'p99 ms':>7}"
    print(head + f" {'server CPU µs/req':>17}")
    for r in results:
        starts = "/".join(f"{s:.2f}" for s in r.startup_s)
        rps = r.encrypt.get("rps", 0.0)
        p99 = r.encrypt.get("p99_ms", 0.0)
        # The server's CPU per request holds better than req/s on a machine others load.
        cpu = r.encrypt.get("server_cpu", 0.0) / rps * 1e6 if rps else 0.0
        print(f"{r.backend:10} {r.size:6} {starts:>16} {rps:>14,.0f} {p99:>7.1f} {cpu:>17.0f}")
    for backend in sorted({r.backend for r in results}):
        pair = {r.size: r for r in results if r.backend == backend}
        if "empty" in pair and "grown" in pair and pair["empty"].encrypt:
            ratio = pair["grown"].encrypt["rps"] / pair["empty"].encrypt["rps"]
            print(f"{backend}: Encrypt grown/empty = {ratio:.2f}")
    print()
    print(
        f"{'backend':10} {'size':6} {'operation':12} {'items':>7} {'pages':>6} {'walk s':>7} "
        f"{'1st 10% ms':>10} {'last 10% ms':>11} {'first p50':>9} {'deep p50':>9}"
    )
    for r in results:
        for x in r.listings:
            print(
                f"{r.backend:10} {r.size:6} {x.operation:12} {x.items:>7} {x.pages:>6} "
                f"{x.walk_s:>7.2f} {x.first_tenth_ms:>10.1f} {x.last_tenth_ms:>11.1f} "
                f"{x.first_page_ms:>9.1f} {x.deep_page_ms:>9.1f}"
            )
    noisy = [f"{r.backend}/{r.size} {r.other_cpu:.2f}" for r in results if r.other_cpu > 0.2]
    if noisy:
        print(f"\nNOISY (cores busy elsewhere before the run): {', '.join(noisy)}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", default="sqlite,postgresql", help="sqlite,postgresql")
    p.add_argument("--sizes", default="empty,grown", help="empty,grown")
    p.add_argument("--keys", type=int, default=100_000)
    p.add_argument("--aliases", type=int, default=20_000)
    p.add_argument("--grants", type=int, default=1_000)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of wrk")
    p.add_argument("--repeat", type=int, default=21, help="timed calls of each page")
    p.add_argument("--starts", type=int, default=3, help="timed starts of each server")
    p.add_argument("--json", type=Path, help="write the results here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    results: list[Result] = []
    workdir = Path(tempfile.mkdtemp(prefix="scale_bench-"))
    try:
        for backend in args.backends.split(","):
            for size in args.sizes.split(","):
                print(f"{backend} {size} ...", flush=True)
                results.append(run_one(backend, size, args, workdir))
    finally:
        stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    print_results(results)
    if args.json is not None:
        doc = {"machine": machine(), "args": vars(args), "results": [asdict(r) for r in results]}
        args.json.write_text(json.dumps(doc, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
