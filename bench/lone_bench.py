#!/usr/bin/env python3
"""Server-side time of a lone Encrypt: from the request read to the reply written, with its
audit event durable, as a boto3 client calling Encrypt in a loop sees the server.

Starts Strongroom in a child process the way ``strongroom serve`` runs one worker (uvicorn,
uvloop, httptools, no access log, the settings' defaults, audit fsync as configured) with
one difference: the ASGI app is wrapped in a timer that notes, for every API request, the
wall time and the event loop thread's CPU time from the moment uvicorn hands the request to
the app (headers parsed, body arriving) until the app's last ``send`` returned (uvicorn has
written the reply to the socket; the pipeline replies only once the audit event is on disk,
and with ``audit_fsync`` on that means synced). The timer is a few calls of
``time.perf_counter_ns`` and ``time.thread_time_ns`` per request; the timings are fetched
with ``GET /bench/timings`` (the wrapper answers it; it never reaches Strongroom).

Then one boto3 client calls Encrypt in a loop for ``--seconds`` (after a warm-up), the
timings are fetched, and p50 / p90 / p99 of the server-side wall time and the median CPU
time are printed, with the client's calls per second. Everything on 127.0.0.1 (an
ephemeral port); the server is stopped at the end, also on error.

    python bench/lone_bench.py                       # audit fsync on (the default), 10 s
    python bench/lone_bench.py --audit-fsync off --seconds 5 --json /tmp/lone.json
"""

from __future__ import annotations

import argparse
import array
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from kms_bench import (  # noqa: E402  (bench/ is not a package)
    HOST,
    Target,
    free_port,
    start,
    stop_all,
    strongroom_credentials,
    wait_ready,
)

TARGET_P50_US = 250.0  # issue 17: a lone Encrypt's server-side p50


class TimedApp:
    """ASGI middleware: per POST request, the wall and CPU nanoseconds from the app call to
    the return of its last ``send``; ``GET /bench/timings`` returns them as JSON and starts
    over."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.wall = array.array("q")
        self.cpu = array.array("q")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            if scope["type"] == "http" and scope["path"] == "/bench/timings":
                await self._timings(send)
                return
            await self.app(scope, receive, send)
            return
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        await self.app(scope, receive, send)
        self.wall.append(time.perf_counter_ns() - t0)
        self.cpu.append(time.thread_time_ns() - c0)

    async def _timings(self, send: Any) -> None:
        body = json.dumps({"wall_ns": list(self.wall), "cpu_ns": list(self.cpu)}).encode()
        self.wall, self.cpu = array.array("q"), array.array("q")
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def serve(data_dir: Path, port: int) -> None:
    """The child: Strongroom with one worker as ``strongroom serve`` runs it, timed."""
    import uvicorn

    from strongroom.server.app import KmsApp
    from strongroom.server.client_config import endpoint_url
    from strongroom.server.settings import load_settings
    from strongroom.server.wiring import build_runtime, prepare

    settings = load_settings(data_dir=data_dir, host=HOST, port=port, log_level="warning")
    prepare(settings, seed=True, endpoint=endpoint_url(HOST, port, "http"))
    app = TimedApp(KmsApp(build_runtime(settings)))
    config = uvicorn.Config(
        app,
        host=HOST,
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        proxy_headers=False,
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seconds", type=float, default=10, help="boto3 loop seconds (default 10)")
    p.add_argument(
        "--audit-fsync",
        choices=["on", "off"],
        help="STRONGROOM_AUDIT_FSYNC for the server (default: the environment's, else on)",
    )
    p.add_argument("--plaintext-bytes", type=int, default=32, help="default 32")
    p.add_argument("--json", type=Path, help="write the results (and every timing) here")
    p.add_argument(
        "--pin",
        action="store_true",
        help="server on CPU 0, the boto3 client on CPU 1 (each keeps its own core's caches)",
    )
    p.add_argument("--serve", nargs=2, metavar=("DATA_DIR", "PORT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        if os.environ.get("LONE_BENCH_SERVER_CPU"):
            os.sched_setaffinity(0, {int(os.environ["LONE_BENCH_SERVER_CPU"])})
        serve(Path(args.serve[0]), int(args.serve[1]))
        return 0

    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    workdir = Path(tempfile.mkdtemp(prefix="lone_bench-"))
    port = free_port()
    env = {}
    if args.audit_fsync is not None:
        env["STRONGROOM_AUDIT_FSYNC"] = "true" if args.audit_fsync == "on" else "false"
    if args.pin:
        env["LONE_BENCH_SERVER_CPU"] = "0"
        os.sched_setaffinity(0, {1})
    fsync = env.get("STRONGROOM_AUDIT_FSYNC", os.environ.get("STRONGROOM_AUDIT_FSYNC", "default"))
    argv_child = [sys.executable, str(Path(__file__).resolve()), "--serve"]
    argv_child += [str(workdir / "strongroom-data"), str(port)]
    try:
        server = start("strongroom", argv_child, port, workdir, env=env)
        wait_ready(server, "/health")
        target = Target("strongroom", server, *strongroom_credentials(workdir))
        kms = target.client()
        key_id = kms.create_key(Description="lone_bench")["KeyMetadata"]["KeyId"]
        plaintext = os.urandom(args.plaintext_bytes)
        for _ in range(200):  # warm-up: connection, caches, the key
            kms.encrypt(KeyId=key_id, Plaintext=plaintext)
        timings_url = server.url + "/bench/timings"
        urllib.request.urlopen(timings_url, timeout=10).read()  # forget the warm-up
        cpu0 = server.cpu_seconds()
        calls = 0
        t0 = time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < args.seconds:
            kms.encrypt(KeyId=key_id, Plaintext=plaintext)
            calls += 1
        server_cpu = (server.cpu_seconds() - cpu0) / calls * 1e6
        data = json.loads(urllib.request.urlopen(timings_url, timeout=10).read())
    finally:
        stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    wall = [ns / 1000 for ns in data["wall_ns"]]
    cpu = [ns / 1000 for ns in data["cpu_ns"]]
    p50 = statistics.median(wall)
    result = {
        "audit_fsync": fsync,
        "calls": calls,
        "calls_per_second": calls / elapsed,
        "server_side_us": {
            "p50": p50,
            "p90": percentile(wall, 0.9),
            "p99": percentile(wall, 0.99),
            "mean": statistics.fmean(wall),
        },
        "loop_thread_cpu_us_p50": statistics.median(cpu),
        "server_process_cpu_us_per_call": server_cpu,
    }
    print(
        f"lone Encrypt, one boto3 client in a loop, audit fsync {fsync}: "
        f"{calls} calls, {calls / elapsed:,.0f} calls/s"
    )
    print(
        f"  server side (request read -> reply written, audit durable): "
        f"p50 {p50:.0f} us, p90 {result['server_side_us']['p90']:.0f} us, "
        f"p99 {result['server_side_us']['p99']:.0f} us "
        f"({'meets' if p50 <= TARGET_P50_US else 'MISSES'} the target p50 <= {TARGET_P50_US:.0f})"
    )
    print(
        f"  of which the event loop thread's CPU: p50 {result['loop_thread_cpu_us_p50']:.0f} us; "
        f"the server process's CPU (all threads, uvicorn included): {server_cpu:.0f} us per call"
    )
    if args.json:
        args.json.write_text(json.dumps({**result, "wall_us": wall, "cpu_us": cpu}, indent=1))
    if len(wall) != calls:
        print(f"  note: {len(wall)} timings for {calls} calls", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
