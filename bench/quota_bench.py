#!/usr/bin/env python3
"""Request quotas: their cost, and how exactly they hold across worker processes.

Part 1, cost: Encrypt at 64 connections (the signed request of ``kms_bench.py`` replayed by
wrk) against Strongroom with request quotas off and on, at AWS's default symmetric rate
(100,000 a second in us-east-1: more than this machine serves, so nothing is throttled).
Off and on alternate, ``--rounds`` times each; the medians' ratio is printed (target: on
within 5% of off).

Part 2, accuracy (``--accuracy``): the symmetric quota of the account set to ``--rate``
(``strongroom admin quota set``), Encrypt replayed by wrk for ``--duration`` seconds at 64
connections and at 1 (one connection: one worker gets all the load); the requests admitted
(2xx) per second against the rate, for each way of sharing a quota between the workers
(``--quota-sharing``: lease, split; local for one worker).

    python3 bench/quota_bench.py                          # cost, 2 workers, ~1 min
    python3 bench/quota_bench.py --workers 1
    python3 bench/quota_bench.py --accuracy --rate 500    # accuracy, ~1 min
    python3 bench/quota_bench.py --micro                  # admit's CPU alone, seconds
    python3 bench/quota_bench.py --pipeline --rounds 8    # CPU per Encrypt, in process

Every run starts with ``--micro``: the CPU that ``admit`` takes per Encrypt in process,
which a busy machine does not blur as it blurs req/s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kms_bench as kb

SYMMETRIC = "Cryptographic operations (symmetric) request rate"


def start(workdir: Path, name: str, workers: int, quotas: bool, sharing: str = "auto") -> Any:
    env = {"STRONGROOM_REQUEST_QUOTAS": "true" if quotas else "false"}
    env["STRONGROOM_QUOTA_SHARING"] = sharing
    server = kb.start_strongroom(workdir, workers, name=name, env=env)
    target = kb.Target(name, server, *kb.strongroom_credentials(workdir, name))
    return target


def set_quota(workdir: Path, name: str, value: float) -> None:
    data = ["--data-dir", str(workdir / f"{name}-data")]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "strongroom.cli.main",
            "admin",
            "quota",
            "set",
            SYMMETRIC,
            f"{value:g}",
            *data,
        ],
        check=True,
        capture_output=True,
    )
    time.sleep(1.0)  # the servers' change polls


def cost(args: argparse.Namespace, workdir: Path, plaintext: bytes) -> dict[str, Any]:
    targets = {
        "off": start(workdir, "off", args.workers, quotas=False),
        "on": start(workdir, "on", args.workers, quotas=True, sharing=args.sharing),
    }
    for t in targets.values():
        t.setup(plaintext)
        kb.run_wrk(t, "Encrypt", args.connections, 2, plaintext, workdir, args.wrk_threads)
    rps: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[float]] = {"off": [], "on": []}  # server CPU per request, us
    for i in range(args.rounds):
        for name in ("off", "on") if i % 2 == 0 else ("on", "off"):
            run = kb.run_wrk(
                targets[name],
                "Encrypt",
                args.connections,
                args.duration,
                plaintext,
                workdir,
                args.wrk_threads,
            )
            if not run.ok:
                raise SystemExit(f"{name}: {run.problem or run.errors}")
            rps[name].append(run.rps)
            cpu_us = run.server_cpu / run.rps * 1e6
            cpu[name].append(cpu_us)
            print(
                f"round {i + 1} quotas {name:<3}: {run.rps:>8,.0f} req/s  p50 {run.p50_ms:.2f} ms"
                f"  p99 {run.p99_ms:.2f} ms  server cpu/request {cpu_us:.0f} us"
                f"  other cpu {run.other_cpu:.2f}",
                flush=True,
            )
    off, on = statistics.median(rps["off"]), statistics.median(rps["on"])
    print(f"median req/s off {off:,.0f}  on {on:,.0f}  on/off {on / off:.3f}", flush=True)
    c_off, c_on = statistics.median(cpu["off"]), statistics.median(cpu["on"])
    print(
        f"median server CPU per request off {c_off:.0f} us  on {c_on:.0f} us  "
        f"on/off {c_on / c_off:.3f} (steadier than req/s on a busy machine)",
        flush=True,
    )
    for t in targets.values():
        kb.stop(t.server)
    return {"off": rps["off"], "on": rps["on"], "ratio": on / off, "cpu_us": cpu}


def accuracy(args: argparse.Namespace, workdir: Path, plaintext: bytes) -> list[dict[str, Any]]:
    modes = ["local"] if args.workers == 1 else ["lease", "split"]
    out = []
    for mode in modes:
        name = f"acc-{mode}"
        target = start(workdir, name, args.workers, quotas=True, sharing=mode)
        target.setup(plaintext)
        set_quota(workdir, name, args.rate)
        for conns in (args.connections, 1):
            time.sleep(1.5)  # the shared bucket full again: one second's burst
            run = kb.run_wrk(
                target, "Encrypt", conns, args.duration, plaintext, workdir, args.wrk_threads
            )
            admitted = run.requests - run.non_2xx
            # wrk's duration includes the first second's burst: the most a bucket allows is
            # rate x duration + rate.
            most = args.rate * args.duration + args.rate
            row = {
                "mode": mode,
                "workers": args.workers,
                "connections": conns,
                "rate": args.rate,
                "duration": args.duration,
                "requests": run.requests,
                "admitted": admitted,
                "admitted_per_s": admitted / args.duration,
                "of_most": admitted / most,
            }
            out.append(row)
            print(
                f"{mode:<6} workers {args.workers} conns {conns:>3}: {run.requests:>7} requests, "
                f"{admitted:>6} admitted = {admitted / args.duration:>7.1f}/s for a rate of "
                f"{args.rate:g}/s ({admitted / most:.1%} of rate x {args.duration:g} s + "
                "one second's burst)",
                flush=True,
            )
        kb.stop(target.server)
    return out


def micro(args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    """Microseconds of CPU per ``admit`` of an Encrypt (its key cached), in process: what
    request quotas add to each request, measured apart from the machine's noise."""
    import asyncio

    from strongroom.domain.models import Caller, Principal
    from strongroom.server.quotas import RequestQuotas
    from strongroom.server.settings import load_settings
    from strongroom.server.wiring import build_core, prepare
    from strongroom.services.core import RequestContext
    from strongroom.services.keys import create_key
    from strongroom.services.resolve import resolve_key

    settings = load_settings(data_dir=workdir / "micro-data", log_level="warning")
    prepare(settings)
    core = build_core(settings)
    account = settings.account
    principal = Principal(f"arn:aws:iam::{account}:root", account, "root", account)
    caller = Caller(principal, "AKIAEXAMPLE", kb.REGION, "127.0.0.1", "quota_bench")
    key = create_key(core, RequestContext(caller, "bench"))
    resolve_key(core, RequestContext(caller, "bench"), key.key_id)  # cached, as when serving
    params = {"KeyId": key.key_id, "Plaintext": b"x"}
    out = {}
    for mode in ("local", "lease"):
        quotas = RequestQuotas(core, enabled=True, mode=mode, workers=2, sqlite=True)
        quotas.start()

        async def loop(n: int, quotas: RequestQuotas = quotas) -> float:
            t0 = time.process_time()
            for _ in range(n):
                waiting = quotas.admit(caller, "Encrypt", params)
                if waiting is not None:
                    await waiting
            return (time.process_time() - t0) / n * 1e6

        asyncio.run(loop(1000))
        out[mode] = asyncio.run(loop(args.micro_calls))
        quotas.stop()
        print(f"admit, {mode:<5}: {out[mode]:.2f} us of CPU per Encrypt", flush=True)
    core.store.close()
    return out


def pipeline(args: argparse.Namespace, workdir: Path) -> dict[str, list[float]]:
    """Microseconds of CPU per Encrypt through the whole pipeline (SigV4, decode, quotas,
    the handler, the audit event) in process, no HTTP: request quotas off and on, in
    alternating batches. The machine's other load blurs this far less than req/s."""
    import asyncio
    import configparser
    from datetime import UTC, datetime

    from strongroom.auth.sigv4 import HttpRequest, sign
    from strongroom.domain.models import Caller, Principal
    from strongroom.server.app import KmsApp
    from strongroom.server.settings import load_settings
    from strongroom.server.wiring import build_runtime, prepare
    from strongroom.services.core import RequestContext
    from strongroom.services.keys import create_key

    apps = {}
    for name, on in (("off", False), ("on", True)):
        settings = load_settings(
            data_dir=workdir / f"pipeline-{name}",
            log_level="warning",
            request_quotas=on,
            audit_fsync=False,
        )
        prepare(settings)
        apps[name] = KmsApp(build_runtime(settings))

    def request(app: KmsApp) -> tuple[dict[str, Any], bytes]:
        """A signed Encrypt request of the admin user under a new key of ``app``'s."""
        creds = configparser.ConfigParser()
        creds.read(app.rt.settings.credentials_path)
        access_key = creds["strongroom"]["aws_access_key_id"]
        secret = creds["strongroom"]["aws_secret_access_key"]
        account = app.rt.settings.account
        root = Principal(f"arn:aws:iam::{account}:root", account, "root", account)
        caller = Caller(root, access_key, kb.REGION, "127.0.0.1", "quota_bench")
        target = kb.Target("pipeline", None, access_key, secret)  # type: ignore[arg-type]
        target.key_id = create_key(app.rt.core, RequestContext(caller, "bench")).key_id
        body = kb.request_body(target, "Encrypt", b"x" * 256)
        amz_date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        headers = {
            "content-type": "application/x-amz-json-1.1",
            "x-amz-target": "TrentService.Encrypt",
            "host": "localhost",
            "x-amz-date": amz_date,
        }
        headers["authorization"] = sign(
            HttpRequest("POST", "/", "", list(headers.items()), body),
            access_key_id=access_key,
            secret_access_key=secret,
            region=kb.REGION,
            service="kms",
            amz_date=amz_date,
        )
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/",
            "raw_path": b"/",
            "query_string": b"",
            "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 5000),
        }
        return scope, body

    async def batch(app: KmsApp, scope: dict[str, Any], body: bytes, n: int) -> float:
        statuses = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        t0 = time.process_time()
        for _ in range(n):
            await app(scope, receive, send)
        spent = (time.process_time() - t0) / n * 1e6
        assert set(statuses) == {200}, set(statuses)
        return spent

    async def run() -> dict[str, list[float]]:
        made = {name: request(app) for name, app in apps.items()}
        for app in apps.values():
            app.startup()
        out: dict[str, list[float]] = {"off": [], "on": []}
        try:
            for name, app in apps.items():
                await batch(app, *made[name], 500)  # warm
            for i in range(args.rounds * 2):
                for name in ("off", "on") if i % 2 == 0 else ("on", "off"):
                    out[name].append(await batch(apps[name], *made[name], 2000))
        finally:
            for app in apps.values():
                await app.shutdown()
        return out

    out = asyncio.run(run())
    off, on = statistics.median(out["off"]), statistics.median(out["on"])
    print(
        f"pipeline CPU per Encrypt (in process, no HTTP): off {off:.1f} us, on {on:.1f} us, "
        f"on/off {on / off:.3f}  (batches off {[round(x) for x in out['off']]}, "
        f"on {[round(x) for x in out['on']]})",
        flush=True,
    )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--rounds", type=int, default=3, help="runs of each, alternating (cost)")
    p.add_argument("--wrk-threads", type=int, default=1)
    p.add_argument("--accuracy", action="store_true", help="part 2 instead of part 1")
    p.add_argument(
        "--sharing", default="auto", help="quota_sharing of the server with quotas on (cost)"
    )
    p.add_argument("--rate", type=float, default=500, help="the quota for --accuracy")
    p.add_argument("--micro", action="store_true", help="only the in-process cost of admit")
    p.add_argument("--micro-calls", type=int, default=100_000)
    p.add_argument(
        "--pipeline", action="store_true", help="only the CPU per Encrypt through the pipeline"
    )
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

    def on_signal(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    workdir = Path(tempfile.mkdtemp(prefix="quota_bench-"))
    plaintext = os.urandom(256)
    results: dict[str, Any] = {"machine": kb.machine(), "settings": vars(args) | {"json": None}}
    try:
        results["admit_us"] = micro(args, workdir)
        if args.pipeline:
            results["pipeline_us"] = pipeline(args, workdir)
        elif args.accuracy:
            results["accuracy"] = accuracy(args, workdir, plaintext)
        elif not args.micro:
            results["cost"] = cost(args, workdir, plaintext)
    finally:
        kb.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
