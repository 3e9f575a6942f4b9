#!/usr/bin/env python3
"""Memory of each worker with many keys in use (issue 17): RSS before and after Encrypt with
every key, on every worker.

1. ``grow_keys`` makes ``--keys`` symmetric keys (default 100,000) in a data directory by
   applying a seed (``services.seeding.apply_seed``, the code ``strongroom serve --seed``
   runs, without the YAML), in transactions of 5,000 keys: real keys with the default key
   policy and wrapped material. A data directory that already holds them is reused (the
   file ``bench-keys`` in it says how many), so an A/B of two source trees reads the same
   database.
2. Starts ``strongroom serve --workers N`` on it (``--src``: the source tree to run, by
   PYTHONPATH; default this one), with audit fsync and request quotas off (neither changes
   what a worker keeps).
3. Opens connections until it holds ``--connections`` of them to each worker (which worker
   accepted a connection is read from /proc: the socket's inode in /proc/net/tcp, among the
   workers' file descriptors), then sends a signed Encrypt for every key on each worker's
   connections, one worker after the other, so that every worker has every key in its
   caches; ``--passes`` times.
4. Prints each worker's VmRSS and VmHWM (/proc/<pid>/status) after start and after each
   pass, and the key cache's hits and misses from /metrics (a miss in the second pass means
   the cache let a key go).

``--profile N`` instead runs in this process: builds the runtime on the data directory,
encrypts with N keys through the handler (the services, their caches and the key stores,
no HTTP), and prints the RSS growth, the deep size of what is kept per key, and
tracemalloc's top allocation sites.

    python3 bench/memory_bench.py --workdir /tmp/membench          # grow once, then measure
    python3 bench/memory_bench.py --workdir /tmp/membench --src /tmp/main-tree/src
    python3 bench/memory_bench.py --workdir /tmp/membench --profile 20000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import configparser
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kms_bench import group_pids

HOST = "127.0.0.1"
REGION = "us-east-1"
HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
CHUNK = 10_000


# --- growing the data --------------------------------------------------------------------


def key_ids(n: int) -> list[str]:
    """``n`` fixed key ids (version-4 UUIDs numbered 1..n), the same in every run."""
    return [str(uuid.UUID(int=i, version=4)) for i in range(1, n + 1)]


def grow_keys(data_dir: Path, n: int) -> float:
    """Make ``data_dir`` hold ``n`` symmetric keys of the server's account in REGION (the
    default key policy, material made and wrapped as CreateKey does); seconds taken (0 when
    a previous run made them: ``data_dir/bench-keys``).

    The first key goes through the seed path (``services.seeding.apply_seed``, what
    ``strongroom serve --seed`` runs); the others are copies of its rows (``keys``,
    ``key_materials``, ``key_material_versions``) with their own id, ARN, KeyMaterialId and
    fresh material wrapped under the root key with their ARN in the AAD, written with one
    executemany per table and chunk: the seed path takes about 10 ms a key here."""
    marker = data_dir / "bench-keys"
    if marker.exists() and int(marker.read_text()) >= n:
        return 0.0
    import logging

    from strongroom.crypto.key_import import generated_material_id
    from strongroom.crypto.wrap import material_aad
    from strongroom.domain.enums import KeySpec, KeyUsage
    from strongroom.server.settings import load_settings
    from strongroom.server.wiring import build_core, prepare
    from strongroom.services.seed_file import SeedFile, SeedKey
    from strongroom.services.seeding import apply_seed
    from strongroom.storage import schema

    logging.getLogger("strongroom").setLevel(logging.WARNING)
    t0 = time.perf_counter()
    settings = load_settings(data_dir=data_dir, log_level="warning")
    prepare(settings)
    core = build_core(settings)
    ids = key_ids(n)
    arns = [f"arn:aws:kms:{REGION}:{settings.account}:key/{i}" for i in ids]
    template = SeedKey(
        index=0,
        key_id=ids[0],
        account=settings.account,
        region=REGION,
        key_spec=KeySpec.SYMMETRIC_DEFAULT,
        key_usage=KeyUsage.ENCRYPT_DECRYPT,
        description=None,
        enabled=None,
        material=None,
        aliases=None,
        tags=None,
        policy=None,
        bypass_policy_lockout_safety_check=False,
        rotation=None,
    )
    engine = core.store.engine  # type: ignore[attr-defined]
    try:
        apply_seed(core, SeedFile(keys=(template,)))
        tables = {
            schema.keys: schema.keys.c.arn,
            schema.key_materials: schema.key_materials.c.key_arn,
            schema.key_material_versions: schema.key_material_versions.c.key_arn,
        }
        with engine.connect() as conn:
            rows = {
                t: [dict(r._mapping) for r in conn.execute(t.select().where(c == arns[0]))]
                for t, c in tables.items()
            }
        old_id = generated_material_id(arns[0], 1)
        for start in range(1, n, CHUNK):
            batch: dict[Any, list[dict[str, Any]]] = {t: [] for t in tables}
            for i in range(start, min(n, start + CHUNK)):
                arn, new_id = arns[i], generated_material_id(arns[i], 1)
                for table, template_rows in rows.items():
                    for row in template_rows:
                        copy = {
                            k: (
                                v.replace(arns[0], arn)
                                .replace(ids[0], ids[i])
                                .replace(old_id, new_id)
                                if isinstance(v, str)
                                else v
                            )
                            for k, v in row.items()
                        }
                        if table is schema.key_materials:
                            secret = os.urandom(32)
                            copy["wrapped"] = core.root_key.wrap(secret, material_aad(arn, 1))
                        batch[table].append(copy)
            with engine.begin() as conn:
                for table, values in batch.items():
                    if values:
                        conn.execute(table.insert(), values)
            print(f"  grown {min(n, start + CHUNK)} keys", flush=True)
        # Rows written past the store: the count behind the "AWS KMS keys" quota (migration
        # 0017's key_counts, when the schema has it) and the keys by state of the metrics
        # (0018's key_state_counts) are set from the keys there are.
        import sqlalchemy as sa

        with engine.begin() as conn:
            if sa.inspect(conn).has_table("key_counts"):
                conn.exec_driver_sql(
                    "UPDATE key_counts SET customer_keys = (SELECT COUNT(*) FROM keys k "
                    "WHERE k.account_id = key_counts.account_id AND k.region = "
                    "key_counts.region AND k.key_manager = 'CUSTOMER')"
                )
            if sa.inspect(conn).has_table("key_state_counts"):
                conn.exec_driver_sql("DELETE FROM key_state_counts")
                conn.exec_driver_sql(
                    "INSERT INTO key_state_counts (account_id, region, state, key_count) "
                    "SELECT account_id, region, state, COUNT(*) FROM keys "
                    "GROUP BY account_id, region, state"
                )
    finally:
        core.store.close()
    marker.write_text(str(n))
    return time.perf_counter() - t0


# --- the server and its workers ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def start_server(data_dir: Path, workers: int, src: Path, log: Path) -> tuple[Any, int]:
    port = free_port()
    argv = [sys.executable, "-m", "strongroom.cli.main", "serve", "--host", HOST]
    argv += ["--port", str(port), "--data-dir", str(data_dir), "--workers", str(workers)]
    argv += ["--log-level", "warning"]
    env = {
        **os.environ,
        "PYTHONPATH": str(src),
        "STRONGROOM_REQUEST_QUOTAS": "false",
        "STRONGROOM_AUDIT_FSYNC": "false",
    }
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=2).read()
            return proc, port
        time.sleep(0.2)
    raise RuntimeError("server did not answer /health in 120 s")


def stop_server(proc: Any) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def worker_pids(leader: int, workers: int) -> list[int]:
    """The worker processes (the supervisor's children; the supervisor itself with 1)."""
    if workers == 1:
        return [leader]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = [p for p in group_pids(leader) if p != leader and _is_worker(p)]
        if len(found) >= workers:
            return found
        time.sleep(0.2)
    raise RuntimeError("workers did not start")


def _is_worker(pid: int) -> bool:
    """A worker: forked by the fork server (``server/workers.py``), not the fork server or
    multiprocessing's resource tracker."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            parent = f.read().rsplit(")", 1)[1].split()[1]
        with open(f"/proc/{parent}/cmdline", "rb") as f:
            return b"forkserver" in f.read()
    except OSError:
        return False


def status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in kB (/proc/<pid>/status), and from
    /proc/<pid>/smaps_rollup its Pss (each page shared with other processes, such as what
    the fork server imported, counted as its share) and USS (its private pages)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                out[name] = int(value.split()[0])
    with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("Pss", "Private_Clean", "Private_Dirty"):
                out[name] = int(value.split()[0])
        out["USS"] = out.pop("Private_Clean", 0) + out.pop("Private_Dirty", 0)
    return out


def socket_owner(client_port: int, server_port: int, pids: list[int]) -> int | None:
    """The worker whose accepted socket is the other end of our connection from
    ``client_port``."""
    want_local = f"0100007F:{server_port:04X}"
    want_remote = f"0100007F:{client_port:04X}"
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if parts[1] == want_local and parts[2] == want_remote:
                inode = parts[9]
                break
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        return pid
    return None


def key_cache_counts(port: int) -> tuple[int, int] | None:
    try:
        text = urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return None
    counts = {}
    for name in ("strongroom_key_cache_hits", "strongroom_key_cache_misses"):
        m = re.search(rf"^{name}(?:_total)?(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.M)
        if m:
            counts[name] = int(float(m.group(1)))
    if len(counts) != 2:
        return None
    return counts["strongroom_key_cache_hits"], counts["strongroom_key_cache_misses"]


# --- signed requests over raw connections -------------------------------------------------


class Signer:
    def __init__(self, data_dir: Path, port: int) -> None:
        from strongroom.auth import sigv4

        creds = configparser.ConfigParser()
        creds.read(data_dir / "credentials")
        section = creds["strongroom"]
        self._ak = section["aws_access_key_id"]
        self._sk = section["aws_secret_access_key"]
        self._host = f"{HOST}:{port}"
        self._sigv4 = sigv4

    def encrypt(self, key_id: str) -> bytes:
        body = json.dumps(
            {"KeyId": key_id, "Plaintext": base64.b64encode(b"m" * 32).decode()}
        ).encode()
        amz_date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        headers = [
            ("host", self._host),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "TrentService.Encrypt"),
            ("x-amz-date", amz_date),
        ]
        auth = self._sigv4.sign(
            self._sigv4.HttpRequest("POST", "/", "", headers, body),
            access_key_id=self._ak,
            secret_access_key=self._sk,
            region=REGION,
            service="kms",
            amz_date=amz_date,
        )
        lines = [f"{k}: {v}" for k, v in headers]
        lines += [f"authorization: {auth}", f"content-length: {len(body)}"]
        return ("POST / HTTP/1.1\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode() + body


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status_code = int(head.split(b" ", 2)[1])
    m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    if m:
        await reader.readexactly(int(m.group(1)))
    return status_code


async def connect_per_worker(
    port: int, pids: list[int], per_worker: int, signer: Signer, probe_key: str
) -> dict[int, list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]:
    """``per_worker`` open connections to each worker (by pid)."""
    held: dict[int, list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {p: [] for p in pids}
    spare = []
    for _ in range(per_worker * len(pids) * 20):
        if all(len(v) >= per_worker for v in held.values()):
            break
        reader, writer = await asyncio.open_connection(HOST, port)
        if await exchange(reader, writer, signer.encrypt(probe_key)) != 200:
            raise RuntimeError("the probe Encrypt failed")
        owner = socket_owner(writer.get_extra_info("sockname")[1], port, pids)
        if owner is not None and len(held[owner]) < per_worker:
            held[owner].append((reader, writer))
        else:
            spare.append(writer)
    for writer in spare:
        writer.close()
    if not all(len(v) >= per_worker for v in held.values()):
        raise RuntimeError(f"could not reach every worker: {[len(v) for v in held.values()]}")
    return held


async def drive(
    held: dict[int, list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]],
    signer: Signer,
    ids: list[str],
) -> tuple[int, int]:
    """Encrypt with every key on every worker; (requests, non-200 replies)."""
    bad = 0
    total = 0

    async def one(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], part: list[str]) -> None:
        nonlocal bad, total
        reader, writer = conn
        for key_id in part:
            if await exchange(reader, writer, signer.encrypt(key_id)) != 200:
                bad += 1
            total += 1

    # Called for one worker at a time: a key a worker has not cached is read in a transaction
    # that takes SQLite's write lock (BEGIN IMMEDIATE), and two workers missing at once wait
    # on each other's lock (busy_timeout sleeps), which made the first pass ten times slower.
    for conns in held.values():
        await asyncio.gather(*(one(conn, ids[i :: len(conns)]) for i, conn in enumerate(conns)))
    return total, bad


def report_rss(label: str, pids: list[int]) -> list[dict[str, int]]:
    rows = [status(p) for p in pids]
    text = "  ".join(
        f"worker {p}: RSS {r['VmRSS'] / 1024:6.1f} MiB (peak {r['VmHWM'] / 1024:6.1f}, "
        f"PSS {r.get('Pss', 0) / 1024:6.1f}, USS {r.get('USS', 0) / 1024:6.1f})"
        for p, r in zip(pids, rows, strict=True)
    )
    print(f"{label:<22} {text}", flush=True)
    return rows


def measure(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    log = args.workdir / "server.log"
    t0 = time.perf_counter()
    proc, port = start_server(data_dir, args.workers, args.src, log)
    result: dict[str, Any] = {"src": str(args.src), "keys": args.keys, "workers": args.workers}
    try:
        print(f"server up in {time.perf_counter() - t0:.1f} s on port {port}", flush=True)
        pids = worker_pids(proc.pid, args.workers)
        time.sleep(1.0)
        result["start"] = report_rss("after start", pids)
        ids = key_ids(args.keys)
        signer = Signer(data_dir, port)

        async def run() -> None:
            for n in range(1, args.passes + 1):
                t1 = time.perf_counter()
                total = bad = 0
                # One worker at a time, on connections opened just before (an idle one is
                # closed after uvicorn's keep-alive timeout, 5 s).
                for pid in pids:
                    held = await connect_per_worker(port, pids, args.connections, signer, ids[0])
                    for other, conns in held.items():
                        if other != pid:
                            for _, writer in conns:
                                writer.close()
                    done, failed = await drive({pid: held[pid]}, signer, ids)
                    total, bad = total + done, bad + failed
                    for _, writer in held[pid]:
                        writer.close()
                took = time.perf_counter() - t1
                counts = key_cache_counts(port)
                rows = report_rss(f"after pass {n}", pids)
                print(
                    f"  pass {n}: {total} Encrypt in {took:.1f} s ({total / took:.0f}/s), "
                    f"{bad} not 200; key cache hits/misses so far: {counts}",
                    flush=True,
                )
                result[f"pass{n}"] = {
                    "rss": rows,
                    "requests": total,
                    "bad": bad,
                    "seconds": took,
                    "key_cache": counts,
                }

        asyncio.run(run())
    finally:
        stop_server(proc)
    return result


# --- in-process profile ------------------------------------------------------------------


def deep_size(obj: object, seen: set[int] | None = None) -> int:
    """``sys.getsizeof`` of ``obj`` and everything it refers to, each object once (types,
    modules and functions left out: they are shared by all)."""
    import gc
    import types

    seen = set() if seen is None else seen
    stack = [obj]
    total = 0
    skip = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)
    while stack:
        o = stack.pop()
        if id(o) in seen or isinstance(o, skip):
            continue
        seen.add(id(o))
        total += sys.getsizeof(o)
        stack.extend(gc.get_referents(o))
    return total


def profile(args: argparse.Namespace, data_dir: Path) -> None:
    import gc
    import tracemalloc

    from strongroom.auth.sigv4 import HttpRequest
    from strongroom.handlers.registry import HANDLERS
    from strongroom.server.settings import load_settings
    from strongroom.server.wiring import build_runtime
    from strongroom.services.core import RequestContext

    n = args.profile
    settings = load_settings(data_dir=data_dir, log_level="warning")
    rt = build_runtime(settings)
    signer = Signer(data_dir, 4599)
    raw = signer.encrypt(key_ids(1)[0])
    head, body = raw.split(b"\r\n\r\n", 1)
    headers = [
        (k.lower(), v) for k, _, v in (h.partition(": ") for h in head.decode().split("\r\n")[1:])
    ]
    caller = rt.authenticator.authenticate(
        HttpRequest("POST", "/", "", headers, body),
        now=datetime.now(UTC),
        source_ip="127.0.0.1",
        user_agent="bench",
    )
    handler = HANDLERS["Encrypt"]
    plaintext = b"m" * 32
    ids = key_ids(n)

    def encrypt_all(part: list[str]) -> None:
        for key_id in part:
            handler(rt.core, RequestContext(caller, "r"), {"KeyId": key_id, "Plaintext": plaintext})

    encrypt_all(ids[:100])  # warm: imports, the first parse of everything
    gc.collect()
    if args.server_gc:  # the collector as KmsApp.startup leaves it
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
    rss0 = status(os.getpid())["VmRSS"]
    if args.trace:
        tracemalloc.start(1)
        snap0 = tracemalloc.take_snapshot()
    t0 = time.process_time()
    encrypt_all(ids)
    cpu = time.process_time() - t0
    if args.server_gc:
        print(f"  RSS before any full collection: {status(os.getpid())['VmRSS'] / 1024:.1f} MB")
    found = gc.collect()
    rss1 = status(os.getpid())["VmRSS"]
    print(f"  a full collection found {found} unreachable objects")
    print(
        f"{n} keys: RSS {rss0 / 1024:.1f} -> {rss1 / 1024:.1f} MB, "
        f"+{(rss1 - rss0) / 1024:.1f} MB ({(rss1 - rss0) * 1024 / n:.0f} B/key); "
        f"{cpu / n * 1e6:.0f} us CPU per Encrypt{' (tracemalloc on)' if args.trace else ''}",
        flush=True,
    )
    if args.trace:
        snap1 = tracemalloc.take_snapshot()
        tracemalloc.stop()
        traced = sum(s.size_diff for s in snap1.compare_to(snap0, "filename"))
        print(f"  traced +{traced / 2**20:.1f} MB ({traced / n:.0f} B/key)")
    core = rt.core
    arns = [f"arn:aws:kms:{REGION}:{settings.account}:key/{i}" for i in ids[-2:]]
    kept: dict[str, tuple[object, object]] = {
        "Key record": (core.cache.key(arns[0]), core.cache.key(arns[1])),
        "KeyGrants": (core.cache.grants(arns[0]), core.cache.grants(arns[1])),
    }
    for name, (first, second) in kept.items():
        seen: set[int] = set()
        deep_size(first, seen)  # what the second shares with the first is not its own
        print(f"  deep size of one more {name}: {deep_size(second, seen)} B")
    print(f"  cache sizes: {cache_sizes(rt)}")
    if args.trace:
        print("top allocation sites (by line, growth over the run):")
        for stat in snap1.compare_to(snap0, "lineno")[: args.top]:
            frame = stat.traceback[0]
            where = f"{Path(frame.filename).name}:{frame.lineno}"
            print(f"  {stat.size_diff / 2**20:7.2f} MB {stat.count_diff:8d} blocks  {where}")
    rt.core.store.close()


def cache_sizes(rt: Any) -> dict[str, int]:
    """The entry count of every per-process map the runtime keeps (private names: a bench may
    look)."""
    out: dict[str, int] = {}
    core = rt.core
    for name, value in vars(core.cache).items():
        if isinstance(value, dict):
            out[f"cache.{name.lstrip('_')}"] = len(value)
    authz = core.authz
    for name, value in vars(authz).items():
        if isinstance(value, dict):
            out[f"authz.{name.lstrip('_')}"] = len(value)
    for name, value in vars(authz.policies).items():
        if isinstance(value, dict):
            out[f"policies.{name.lstrip('_')}"] = len(value)
    software = core.keystores._software
    out["material"] = len(software._cache._materials)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keys", type=int, default=100_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--connections", type=int, default=4, help="per worker (4)")
    p.add_argument("--passes", type=int, default=2)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/strongroom-memory-bench"))
    p.add_argument("--src", type=Path, default=SRC, help="source tree the server runs")
    p.add_argument("--json", type=Path, help="write the numbers here")
    p.add_argument("--profile", type=int, default=0, help="in-process profile with N keys")
    p.add_argument("--trace", action="store_true", help="--profile with tracemalloc")
    p.add_argument(
        "--server-gc", action="store_true", help="--profile with the server's gc thresholds"
    )
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the server on the way out
    args.workdir.mkdir(parents=True, exist_ok=True)
    data_dir = args.workdir / "data"
    took = grow_keys(data_dir, args.keys)
    if took:
        print(f"grew {args.keys} keys in {took:.0f} s", flush=True)
    if args.profile:
        profile(args, data_dir)
        return 0
    result = measure(args, data_dir)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
