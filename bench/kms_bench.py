#!/usr/bin/env python3
"""Strongroom vs moto: Encrypt / Decrypt / GenerateDataKey / Sign / GenerateMac under wrk,
plus a boto3 loop.

Starts Strongroom and moto's server on 127.0.0.1 (ephemeral ports), creates a symmetric
key, two signing keys (ECC_NIST_P256, RSA_2048) and an HMAC_256 key on each, then for each
operation and connection count drives both with ``wrk`` and the same kind of SigV4-signed
request (signed once per run with botocore, the Host header exactly as wrk sends it). Prints
req/s, p50 and p99 for each server and the ratio Strongroom/moto, and fails loudly when any
reply was not 2xx.

Beside them, the bare same-stack app (``hello_asgi.app`` under the same uvicorn + uvloop +
httptools with the same number of workers, driven with the same signed Encrypt request)
gives the ceiling of the stack in the same run: each operation's req/s is also printed as a
share of it. Every (server, operation, connections) is measured ``--repeat`` times (default
3), interleaved, and the median run (by req/s) counts.

Then measures a single boto3 client calling Encrypt in a loop against Strongroom and
against an "instant" server (``hello_asgi.kms_instant`` under uvicorn: a canned, valid
EncryptResponse) and prints the ratio.

All traffic goes to 127.0.0.1; every server started here is killed at the end, also on
error or Ctrl-C. See bench/README.md.

    python bench/kms_bench.py                       # the default run, a few minutes
    python bench/kms_bench.py --json /tmp/r.json   # workers: the server's default, per core
    python bench/kms_bench.py --only strongroom --duration 5
    python bench/kms_bench.py --only strongroom,stack --repeat 1   # vs the ceiling, no moto
    python bench/kms_bench.py --py-spy /tmp/encrypt.txt   # profile Encrypt at 64 conns
"""

from __future__ import annotations

import argparse
import base64
import configparser
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from strongroom.server.settings import default_workers

HERE = Path(__file__).resolve().parent
# stack: the bare same-stack app (the ceiling); floor: the essential work of a faithful
# Encrypt alone on that stack (floor_app.py; Encrypt only, asked for by name).
SERVERS = ("strongroom", "moto", "stack", "floor")
HOST = "127.0.0.1"
REGION = "us-east-1"
# Benchmark label -> the KMS operation it sends (Sign once per key spec).
KMS_OPERATION = {
    "Encrypt": "Encrypt",
    "Decrypt": "Decrypt",
    "GenerateDataKey": "GenerateDataKey",
    "Sign-P256": "Sign",
    "Sign-RSA2048": "Sign",
    "GenerateMac": "GenerateMac",
}
OPERATIONS = tuple(KMS_OPERATION)
CLK_TCK = os.sysconf("SC_CLK_TCK")
NOISY = 0.2  # cores used by other processes during a run above which it counts as noisy


# --- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def group_pids(leader: int) -> list[int]:
    """Every live process of the process group ``leader`` leads, sorted."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == leader:  # pgrp (field 5) == the group's leader
            out.append(int(entry))
    return sorted(out)


@dataclass
class Server:
    """A server process started here, in a process group of its own."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def pids(self) -> list[int]:
        """Every live process of the server's group (supervisor and workers)."""
        return group_pids(self.proc.pid)

    def cpu_seconds(self) -> float:
        """User + system CPU seconds used so far by the live processes of the group."""
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / CLK_TCK

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


STARTED: list[Server] = []


def cpu_times() -> tuple[float, float, float]:
    """Machine-wide (user+nice+system, softirq+irq, total) CPU seconds from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return (v[0] + v[1] + v[2]) / CLK_TCK, (v[5] + v[6]) / CLK_TCK, sum(v[:8]) / CLK_TCK


def wait_quiet(max_wait: float, threshold: float = 0.15) -> float:
    """Wait up to ``max_wait`` seconds for a second in which other processes use less than
    ``threshold`` cores; return the last reading."""
    deadline = time.monotonic() + max_wait
    busy = quiet_check()
    while busy > threshold and time.monotonic() < deadline:
        busy = quiet_check()
    return busy


def quiet_check(seconds: float = 1.0) -> float:
    """Cores busy on this machine right now (before we load it): other people's work."""
    a = cpu_times()
    time.sleep(seconds)
    b = cpu_times()
    return (b[0] - a[0] + b[1] - a[1]) / seconds


def start(
    name: str,
    argv: list[str],
    port: int,
    workdir: Path,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Server:
    log = workdir / f"{name}.log"
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        start_new_session=True,  # own process group: we can stop it and its workers
    )
    server = Server(name, proc, port, log)
    STARTED.append(server)
    return server


def wait_ready(server: Server, path: str = "/", timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with {server.proc.returncode}:\n{server.tail()}"
            )
        try:
            with socket.create_connection((HOST, server.port), timeout=0.5):
                pass
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(server.url + path, timeout=2).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(
        f"{server.name} did not answer on port {server.port} in {timeout:.0f}s:\n{server.tail()}"
    )


def stop(server: Server) -> None:
    """SIGTERM the server's process group, SIGKILL after 5 s."""
    if server in STARTED:
        STARTED.remove(server)
    pgid = server.proc.pid
    if server.proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.proc.wait(timeout=5)
    # Workers may outlive the supervisor: kill whatever is left in the group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.proc.wait(timeout=5)


def stop_all() -> None:
    for server in list(STARTED):
        stop(server)


def start_strongroom(
    workdir: Path,
    workers: int,
    audit_fsync: str | None = None,
    *,
    name: str = "strongroom",
    env: dict[str, str] | None = None,
) -> Server:
    """Strongroom on its own data directory ``workdir/<name>-data``; ``env`` is added to the
    environment (settings such as STRONGROOM_ROOT_KEY)."""
    data = workdir / f"{name}-data"
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "strongroom.cli.main",
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--data-dir",
        str(data),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]
    # The environment passes through (start()); --audit-fsync overrides STRONGROOM_AUDIT_FSYNC.
    env = dict(env or {})
    # AWS's request quotas would throttle a benchmark (bench/quota_bench.py measures them).
    env.setdefault("STRONGROOM_REQUEST_QUOTAS", "false")
    if audit_fsync is not None:
        env["STRONGROOM_AUDIT_FSYNC"] = "true" if audit_fsync == "on" else "false"
    server = start(name, argv, port, workdir, env=env)
    wait_ready(server, "/health")
    return server


def start_moto(workdir: Path) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]
    server = start("moto", argv, port, workdir)
    wait_ready(server, "/moto-api/")
    return server


def start_xks_proxy(workdir: Path, *extra: str) -> tuple[Server, dict[str, Any]]:
    """The bundled XKS proxy in trial mode (``strongroom xks-proxy --dev``, its SoftHSM2
    token under ``workdir``), ready: its server and its ``xks-proxy.json``."""
    port = free_port()
    data = workdir / "xks-proxy-data"
    argv = [sys.executable, "-m", "strongroom.cli.main", "xks-proxy", "--dev", *extra]
    argv += ["--host", HOST, "--port", str(port), "--data-dir", str(data)]
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    server = start("xks-proxy", argv, port, workdir, env=env)
    wait_ready(server, "/")
    config: dict[str, Any] = json.loads((data / "xks-proxy.json").read_text())
    return server, config


def start_instant(workdir: Path, body: bytes) -> Server:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "hello_asgi:kms_instant",
        "--host",
        HOST,
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    server = start("instant", argv, port, workdir, cwd=HERE, env={"INSTANT_BODY": body.decode()})
    wait_ready(server)
    return server


def uvicorn_hello_argv(port: int, workers: int, app: str = "hello_asgi:app") -> list[str]:
    """``hello_asgi.app`` (reads the body, answers 5 bytes), or another ``app``, under
    uvicorn with uvloop and httptools and ``workers`` worker processes, run from bench/."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def start_stack(workdir: Path, workers: int) -> Server:
    """The bare same-stack app (``uvicorn_hello_argv``), as stack_bench.py runs it: the
    ceiling of the HTTP stack Strongroom runs on."""
    port = free_port()
    server = start("stack", uvicorn_hello_argv(port, workers), port, workdir, cwd=HERE)
    wait_ready(server)
    return server


def start_floor(
    workdir: Path, workers: int, access_key: str, secret_key: str, audit_fsync: str | None
) -> Server:
    """``floor_app.app`` (the essential work of a faithful Encrypt, nothing else) on the
    bare stack's uvicorn set-up, accepting the one credential given; its audit segments go
    under ``workdir/floor-audit``."""
    port = free_port()
    env = {
        "FLOOR_ACCESS_KEY": access_key,
        "FLOOR_SECRET_KEY": secret_key,
        "FLOOR_AUDIT_DIR": str(workdir / "floor-audit"),
        "FLOOR_AUDIT_FSYNC": audit_fsync or "on",
        "PYTHONPATH": os.pathsep.join(
            [str(HERE.parent / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    argv = uvicorn_hello_argv(port, workers, "floor_app:app")
    server = start("floor", argv, port, workdir, cwd=HERE, env=env)
    wait_ready(server)
    return server


def strongroom_credentials(workdir: Path, name: str = "strongroom") -> tuple[str, str]:
    creds = configparser.ConfigParser()
    creds.read(workdir / f"{name}-data" / "credentials")
    section = creds["strongroom"]
    return section["aws_access_key_id"], section["aws_secret_access_key"]


# --- clients and signed requests ---------------------------------------------------------


@dataclass
class Target:
    """A server under test, with the credentials and key the benchmark uses on it."""

    name: str
    server: Server
    access_key: str
    secret_key: str
    key_id: str = ""
    blob: bytes = b""
    sign_keys: dict[str, str] = field(default_factory=dict)  # key spec -> key id
    mac_key: str = ""

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "kms",
            endpoint_url=self.server.url,
            region_name=REGION,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )

    def setup(self, plaintext: bytes, key_policy: str | None = None) -> None:
        kms = self.client()
        extra = {"Policy": key_policy} if key_policy else {}
        self.key_id = kms.create_key(Description="kms_bench", **extra)["KeyMetadata"]["KeyId"]
        self.blob = kms.encrypt(KeyId=self.key_id, Plaintext=plaintext)["CiphertextBlob"]
        for spec in ("ECC_NIST_P256", "RSA_2048"):
            meta = kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]
            self.sign_keys[spec] = meta["KeyId"]
        meta = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
        self.mac_key = meta["KeyId"]


def request_body(target: Target, operation: str, plaintext: bytes) -> bytes:
    if operation == "Encrypt":
        doc: dict[str, Any] = {
            "KeyId": target.key_id,
            "Plaintext": base64.b64encode(plaintext).decode(),
        }
    elif operation == "Decrypt":
        doc = {"CiphertextBlob": base64.b64encode(target.blob).decode()}
    elif operation == "GenerateDataKey":
        doc = {"KeyId": target.key_id, "KeySpec": "AES_256"}
    elif operation in ("Sign-P256", "Sign-RSA2048"):
        spec, algorithm = (
            ("ECC_NIST_P256", "ECDSA_SHA_256")
            if operation == "Sign-P256"
            else ("RSA_2048", "RSASSA_PSS_SHA_256")
        )
        doc = {
            "KeyId": target.sign_keys[spec],
            "Message": base64.b64encode(plaintext).decode(),
            "MessageType": "RAW",
            "SigningAlgorithm": algorithm,
        }
    elif operation == "GenerateMac":
        doc = {
            "KeyId": target.mac_key,
            "Message": base64.b64encode(plaintext).decode(),
            "MacAlgorithm": "HMAC_SHA_256",
        }
    else:
        raise ValueError(operation)
    return json.dumps(doc, separators=(",", ":")).encode()


def signed_headers(target: Target, operation: str, body: bytes) -> dict[str, str]:
    """Headers of a botocore-style KMS request, SigV4-signed now (valid for 5 minutes)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    host = f"{HOST}:{target.server.port}"
    request = AWSRequest(
        method="POST",
        url=target.server.url + "/",
        data=body,
        headers={
            "Host": host,  # exactly what wrk sends
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"TrentService.{KMS_OPERATION[operation]}",
        },
    )
    SigV4Auth(Credentials(target.access_key, target.secret_key), "kms", REGION).add_auth(request)
    headers = {k: v for k, v in request.headers.items()}
    headers["User-Agent"] = "kms_bench/1 wrk"  # not signed, as botocore does
    return headers


def check_once(
    target: Target, headers: dict[str, str], body: bytes, path: str = "/"
) -> tuple[int, bytes]:
    """Send the pre-signed request once, as wrk will, and return (status, body)."""
    import http.client

    conn = http.client.HTTPConnection(HOST, target.server.port, timeout=10)
    try:
        conn.putrequest("POST", path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def _lua_string(value: str) -> str:
    level = "=" * 4
    while f"]{level}]" in value:
        level += "="
    return f"[{level}[{value}]{level}]"


LUA_DONE = """
done = function(summary, latency, requests)
  io.write(string.format(
    "KMS_BENCH_JSON {\\"requests\\":%d,\\"duration_us\\":%d,\\"bytes\\":%d,"
    .. "\\"err_connect\\":%d,\\"err_read\\":%d,\\"err_write\\":%d,"
    .. "\\"err_status\\":%d,\\"err_timeout\\":%d,"
    .. "\\"p50_us\\":%d,\\"p90_us\\":%d,\\"p99_us\\":%d,\\"max_us\\":%d,\\"mean_us\\":%.1f}\\n",
    summary.requests, summary.duration, summary.bytes,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


def wrk_script(headers: dict[str, str], body: bytes, delay_ms: float | None = None) -> str:
    """The Lua script that makes wrk replay one request; with ``delay_ms``, each connection
    waits that long before each request (a paced load: latency without queueing)."""
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(body.decode())}"]
    for name, value in headers.items():
        lines.append(f"wrk.headers[ {_lua_string(name)} ] = {_lua_string(value)}")
    if delay_ms is not None:
        lines.append(f"delay = function() return {round(delay_ms)} end")
    return "\n".join(lines) + "\n" + LUA_DONE


@dataclass
class Run:
    server: str
    operation: str
    connections: int
    duration_s: float
    requests: int = 0
    rps: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    non_2xx: int = 0
    server_cpu: float = 0.0  # cores busy in the server's processes during the run
    wrk_cpu: float = 0.0  # cores busy in wrk
    other_cpu: float = 0.0  # cores busy in other processes (user+system), i.e. noise
    problem: str = ""

    @property
    def ok(self) -> bool:
        return (
            not self.problem
            and self.non_2xx == 0
            and not any(self.errors.values())
            and self.requests > 0
        )


def run_wrk(
    target: Target,
    operation: str,
    connections: int,
    duration: float,
    plaintext: bytes,
    workdir: Path,
    threads: int,
    profile: Path | None = None,
    request: Callable[[], tuple[str, dict[str, str], bytes]] | None = None,
    delay_ms: float | None = None,
) -> Run:
    """wrk replaying one signed request: ``operation``'s KMS request, or what ``request``
    makes, (path, signed headers, body), for a server that is not a KMS."""
    if request is None:
        path = "/"
        body = request_body(target, operation, plaintext)
        headers = signed_headers(target, operation, body)  # fresh signature for every run
    else:
        path, headers, body = request()
    result = Run(target.name, operation, connections, duration)
    status, reply = check_once(target, headers, body, path)
    if status != 200:
        result.problem = f"pre-check answered {status}: {reply[:300].decode(errors='replace')}"
        return result
    script = workdir / f"{target.name}-{operation}.lua"
    script.write_text(wrk_script(headers, body, delay_ms))
    threads = max(1, min(threads, connections))
    argv = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{duration:g}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(script),
        target.server.url + path,
    ]
    spy = None
    if profile is not None:
        spy = subprocess.Popen(
            [
                "py-spy",
                "record",
                "--format",
                "raw",
                "--subprocesses",
                "--threads",
                "--nonblocking",
                "-r",
                "200",
                "-d",
                f"{max(1, int(duration) - 1)}",
                "-o",
                str(profile),
                "--pid",
                str(target.server.proc.pid),
            ],
            stdout=subprocess.DEVNULL,
            stderr=(workdir / "py-spy.log").open("wb"),
        )
        time.sleep(1.0)  # let py-spy attach before the load starts
    cpu0 = target.server.cpu_seconds()
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine0 = cpu_times()
    wall0 = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    wall = time.monotonic() - wall0
    machine1 = cpu_times()
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    result.server_cpu = (target.server.cpu_seconds() - cpu0) / wall
    result.wrk_cpu = (
        (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    ) / wall
    # What else ran: machine-wide user+system minus the server, wrk and py-spy (if any).
    result.other_cpu = max(
        0.0,
        (machine1[0] - machine0[0]) / wall
        - result.server_cpu
        - result.wrk_cpu
        - (0.0 if spy is None else 0.1),
    )
    if spy is not None:
        spy.wait(timeout=duration + 60)
    out = done.stdout
    match = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    result.non_2xx = int(match.group(1)) if match else 0
    match = re.search(r"KMS_BENCH_JSON (\{.*\})", out)
    if done.returncode != 0 or not match:
        detail = (done.stderr.strip() or out.strip()).splitlines()
        result.problem = (
            f"wrk failed (exit {done.returncode}): {detail[-1] if detail else 'no output'}"
        )
        return result
    data = json.loads(match.group(1))
    result.requests = data["requests"]
    result.rps = data["requests"] / (data["duration_us"] / 1e6)
    result.p50_ms, result.p90_ms = data["p50_us"] / 1000, data["p90_us"] / 1000
    result.p99_ms, result.max_ms = data["p99_us"] / 1000, data["max_us"] / 1000
    result.errors = {k[4:]: v for k, v in data.items() if k.startswith("err_") and v}
    if result.non_2xx:
        if request is None:
            again = (path, signed_headers(target, operation, body), body)
        else:
            again = request()
        _, sample = check_once(target, again[1], again[2], again[0])
        result.problem = (
            f"{result.non_2xx} non-2xx replies; a fresh request now gets: {sample[:200]!r}"
        )
    return result


# --- boto3 loop --------------------------------------------------------------------------


def boto3_loop(client: Any, key_id: str, plaintext: bytes, seconds: float) -> float:
    """Encrypt calls per second from one boto3 client in a tight loop."""
    for _ in range(50):  # warm up: connection, signer, parser
        client.encrypt(KeyId=key_id, Plaintext=plaintext)
    calls = 0
    start_t = time.perf_counter()
    end = start_t + seconds
    while True:
        client.encrypt(KeyId=key_id, Plaintext=plaintext)
        calls += 1
        now = time.perf_counter()
        if now >= end:
            return calls / (now - start_t)


# --- reporting ---------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.splitlines()
    versions = {}
    for package in (
        "strongroom",
        "moto",
        "boto3",
        "uvicorn",
        "uvloop",
        "httptools",
        "orjson",
        "cryptography",
    ):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[package] = version(package)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "wrk": wrk[0].strip() if wrk else "",
        "versions": versions,
    }


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def median_run(runs: list[Run]) -> Run:
    """The run with the median req/s of repeated runs (the lower middle of an even count);
    a failed run counts as 0 req/s, so that a failure is not hidden by the others."""
    ordered = sorted(runs, key=lambda r: r.rps if r.ok else 0.0)
    return ordered[(len(ordered) - 1) // 2]


def ceiling_of(runs: list[Run], connections: int) -> Run | None:
    """The bare same-stack app's run at ``connections`` (driven with the Encrypt request)."""
    for r in runs:
        if r.server == "stack" and r.connections == connections and r.requests:
            return r
    return None


def print_table(runs: list[Run]) -> None:
    by = {(r.server, r.operation, r.connections): r for r in runs}
    keys = sorted(
        {(r.operation, r.connections) for r in runs if r.server not in ("stack", "floor")},
        key=lambda k: (OPERATIONS.index(k[0]), k[1]),
    )
    has_moto = any(r.server == "moto" for r in runs)
    has_stack = any(r.server == "stack" for r in runs)
    has_floor = any(r.server == "floor" for r in runs)
    head = f"{'operation':<16}{'conns':>6} | {'strongroom req/s':>16}{'p50 ms':>8}{'p99 ms':>8}"
    head += f"{'cpu':>5}"
    if has_moto:
        head += f" | {'moto req/s':>10}{'p50 ms':>8}{'p99 ms':>8} | {'ratio':>6}"
    if has_stack:
        head += f" | {'stack req/s':>11}{'cpu':>5} | {'% ceil':>6}"
    if has_floor:
        head += f" | {'floor req/s':>11}{'cpu':>5}" + (f" | {'% ceil':>6}" if has_stack else "")
    print(head)
    print("-" * len(head))
    for op, conns in keys:
        s = by.get(("strongroom", op, conns))
        line = f"{op:<16}{conns:>6} | "
        line += (
            f"{fmt_rate(s.rps):>16}{s.p50_ms:>8.2f}{s.p99_ms:>8.2f}{s.server_cpu:>5.2f}"
            if s and s.requests
            else f"{'FAILED':>16}{'':>8}{'':>8}{'':>5}"
        )
        if has_moto:
            m = by.get(("moto", op, conns))
            line += " | " + (
                f"{fmt_rate(m.rps):>10}{m.p50_ms:>8.2f}{m.p99_ms:>8.2f}"
                if m and m.requests
                else f"{'FAILED':>10}{'':>16}"
            )
            ratio = s.rps / m.rps if s and m and s.requests and m.requests and m.rps else 0.0
            line += f" | {ratio:>5.1f}x" if ratio else " |      -"
        if has_stack:
            c = ceiling_of(runs, conns)
            line += " | " + (
                f"{fmt_rate(c.rps):>11}{c.server_cpu:>5.2f}" if c else f"{'FAILED':>11}{'':>5}"
            )
            share = s.rps / c.rps if s and c and s.requests and c.rps else 0.0
            line += f" | {share:>6.0%}" if share else " |      -"
        if has_floor:
            f = by.get(("floor", op, conns))
            line += " | " + (
                f"{fmt_rate(f.rps):>11}{f.server_cpu:>5.2f}" if f and f.requests else f"{'-':>16}"
            )
            if has_stack:
                c = ceiling_of(runs, conns)
                share = f.rps / c.rps if f and c and f.requests and c.rps else 0.0
                line += f" | {share:>6.0%}" if share else " |      -"
        flags = [
            f"{r.server}: {r.problem or ('errors ' + str(r.errors))}"
            for r in (
                by.get(("strongroom", op, conns)),
                by.get(("moto", op, conns)),
                by.get(("stack", op, conns)),
                by.get(("floor", op, conns)),
            )
            if r is not None and not r.ok
        ]
        if flags:
            line += "   <-- " + "; ".join(flags)
        print(line)
    print(
        "(cpu = cores busy in the server's processes during the run; wrk used "
        f"~{max((r.wrk_cpu for r in runs), default=0):.2f} cores at most"
        + (
            "; stack = the bare same-stack app (hello_asgi.app, same uvicorn + uvloop + "
            "httptools and workers) driven with the signed Encrypt request: % ceil = "
            "Strongroom / stack at the same connections"
            + (
                "; floor = floor_app.py, the essential work of a faithful Encrypt alone on "
                "that stack)"
                if has_floor
                else ")"
            )
            if has_stack
            else ")"
        )
    )
    noisy = [r for r in runs if r.other_cpu > NOISY]
    if noisy:
        print(
            f"WARNING: other processes used up to {max(r.other_cpu for r in noisy):.2f} cores "
            f"during {len(noisy)} run(s): the machine was not quiet, numbers are low and noisy."
        )


# --- main --------------------------------------------------------------------------------


def measure(
    args: argparse.Namespace,
    target: Target,
    name: str,
    op: str,
    conns: int,
    plaintext: bytes,
    workdir: Path,
    profile: Path | None,
) -> Run:
    """One wrk run, measured again up to ``--retry-noisy`` times when other processes were
    busy during it; the quietest counts."""
    r = None
    for attempt in range(1 + args.retry_noisy):
        if args.wait_quiet > 0:
            wait_quiet(args.wait_quiet)
        again = run_wrk(
            target, op, conns, args.duration, plaintext, workdir, args.wrk_threads, profile
        )
        if r is None or again.other_cpu < r.other_cpu:
            r = again
        if r.other_cpu <= NOISY or not r.ok or attempt == args.retry_noisy:
            break
        print(
            f"  ({name} {op} c={conns}: other processes used {again.other_cpu:.2f} "
            f"cores; measuring again, {attempt + 1}/{args.retry_noisy})",
            flush=True,
        )
    assert r is not None
    return r


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--duration", type=float, default=10, help="seconds per wrk run (default 10)")
    p.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="Strongroom's (and the bare stack's) worker processes (default: the server's "
        f"own default, one per core: {default_workers()})",
    )
    p.add_argument(
        "--only",
        help="comma-separated servers to benchmark, of strongroom, moto, stack (the bare "
        "same-stack ceiling) and floor (floor_app.py: only the essential work of a faithful "
        "Encrypt on that stack; Encrypt only); default strongroom,moto,stack",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs per (server, operation, connections), interleaved; the median counts "
        "(default 3)",
    )
    p.add_argument(
        "--key-policy",
        type=Path,
        help="key policy (JSON file) of the symmetric key, e.g. bench/policies/ten_statements.json",
    )
    p.add_argument("--json", type=Path, help="write the results to this file")
    p.add_argument("--connections", default="1,64", help="comma-separated (default 1,64)")
    p.add_argument(
        "--operations",
        default=",".join(OPERATIONS),
        help="comma-separated subset of " + ", ".join(OPERATIONS),
    )
    p.add_argument(
        "--wrk-threads",
        type=int,
        default=1,
        help="wrk threads (default 1: leaves the other core of a 2-core machine to the server)",
    )
    p.add_argument(
        "--plaintext-bytes", type=int, default=32, help="Encrypt plaintext size (default 32)"
    )
    p.add_argument(
        "--warmup", type=float, default=2, help="seconds of Encrypt load before measuring"
    )
    p.add_argument(
        "--loop-seconds",
        type=float,
        default=5,
        help="seconds per boto3 loop measurement (0 skips the boto3 loop test; default 5)",
    )
    p.add_argument(
        "--loop-only",
        action="store_true",
        help="skip the wrk runs: only the boto3 loop (against Strongroom and the instant server)",
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="SECONDS",
        help="before each run, wait up to SECONDS for other processes to leave the machine "
        "idle (default 0: don't wait; the 'other' column shows the noise)",
    )
    p.add_argument(
        "--retry-noisy",
        type=int,
        default=0,
        metavar="N",
        help="measure a run again, up to N times, when other processes used more than "
        f"{NOISY} cores during it; keep the quietest (default 0)",
    )
    p.add_argument(
        "--audit-fsync",
        choices=["on", "off"],
        help="Strongroom's audit_fsync setting (sets STRONGROOM_AUDIT_FSYNC for the server; "
        "default: whatever the environment says, else the server's default, on)",
    )
    p.add_argument(
        "--py-spy",
        type=Path,
        metavar="FILE",
        help="record a py-spy profile (raw collapsed stacks) of Strongroom during Encrypt "
        "at the highest connection count, into FILE",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n for n in (args.only or "strongroom,moto,stack").split(",") if n]
    if not names or any(n not in SERVERS for n in names):
        print(f"--only takes a comma-separated subset of {', '.join(SERVERS)}", file=sys.stderr)
        return 2
    names = [n for n in SERVERS if n in names]  # the order runs and tables use
    if args.repeat < 1:
        print("--repeat must be at least 1", file=sys.stderr)
        return 2
    if args.loop_only:
        if "strongroom" not in names or args.loop_seconds <= 0:
            print("--loop-only needs Strongroom and --loop-seconds > 0", file=sys.stderr)
            return 2
        args.connections = args.operations = ""
        args.warmup = 0
    elif shutil.which("wrk") is None:
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2
    if args.py_spy is not None and shutil.which("py-spy") is None:
        print("py-spy not found: pip install py-spy", file=sys.stderr)
        return 2
    connections = [int(c) for c in args.connections.split(",") if c]
    operations = [o for o in args.operations.split(",") if o]
    for o in operations:
        if o not in OPERATIONS:
            print(f"unknown operation {o}", file=sys.stderr)
            return 2
    plaintext = os.urandom(args.plaintext_bytes)
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

    def on_signal(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    audit_fsync = args.audit_fsync or os.environ.get("STRONGROOM_AUDIT_FSYNC", "default")
    results: dict[str, Any] = {
        "machine": machine(),
        "settings": {
            "duration": args.duration,
            "workers": args.workers,
            "connections": connections,
            "operations": operations,
            "wrk_threads": args.wrk_threads,
            "plaintext_bytes": args.plaintext_bytes,
            "audit_fsync": audit_fsync,
            "repeat": args.repeat,
            "servers": names,
        },
    }
    runs: list[Run] = []
    failed = False
    workdir = Path(tempfile.mkdtemp(prefix="kms_bench-"))
    busy = quiet_check()
    results["busy_before"] = busy
    if busy > 0.2:
        print(
            f"WARNING: {busy:.2f} cores were busy before the benchmark started (other processes): "
            "results will be low and noisy. Check `top`.",
            flush=True,
        )
    try:
        targets: dict[str, Target] = {}
        if "strongroom" in names:
            sr = start_strongroom(workdir, args.workers, args.audit_fsync)
            targets["strongroom"] = Target("strongroom", sr, *strongroom_credentials(workdir))
            print(
                f"strongroom: pid {sr.proc.pid}, port {sr.port}, workers {args.workers}", flush=True
            )
        if "moto" in names:
            mt = start_moto(workdir)
            targets["moto"] = Target("moto", mt, "testing", "testing")
            print(f"moto:       pid {mt.proc.pid}, port {mt.port}", flush=True)
        for t in targets.values():
            t.setup(plaintext, args.key_policy.read_text() if args.key_policy else None)
        if "stack" in names and not args.loop_only:
            st = start_stack(workdir, args.workers)
            model = targets.get("strongroom") or targets.get("moto")
            # Any signature will do (the app checks none); the request is Strongroom's
            # Encrypt, signed with Strongroom's key when it runs, with the stack's Host.
            targets["stack"] = Target(
                "stack",
                st,
                model.access_key if model else "AKIAIOSFODNN7EXAMPLE",
                model.secret_key if model else "stack",
                key_id=model.key_id if model else "1234abcd-12ab-34cd-56ef-1234567890ab",
            )
            print(f"stack:      pid {st.proc.pid}, port {st.port}, workers {args.workers}")
        if "floor" in names and not args.loop_only:
            model = targets.get("strongroom") or targets.get("moto")
            access, secret = (
                (model.access_key, model.secret_key) if model else ("AKIAIOSFODNN7EXAMPLE", "floor")
            )
            fl = start_floor(workdir, args.workers, access, secret, args.audit_fsync)
            key_id = model.key_id if model else "1234abcd-12ab-34cd-56ef-1234567890ab"
            targets["floor"] = Target("floor", fl, access, secret, key_id=key_id)
            print(f"floor:      pid {fl.proc.pid}, port {fl.port}, workers {args.workers}")
        for t in targets.values():
            if args.warmup > 0:
                run_wrk(
                    t,
                    "Encrypt",
                    max(connections),
                    args.warmup,
                    plaintext,
                    workdir,
                    args.wrk_threads,
                )

        all_runs: list[Run] = []
        for op in operations:
            for conns in connections:
                # The ceiling is the stack's answer to the Encrypt request: measured once per
                # connection count, with the first operation's repetitions.
                # The floor does Encrypt alone.
                servers = [
                    n
                    for n in names
                    if (n != "stack" or op == operations[0]) and (n != "floor" or op == "Encrypt")
                ]
                repeated: dict[str, list[Run]] = {n: [] for n in servers}
                for rep in range(args.repeat):
                    for name in servers:
                        profile = None
                        if (
                            args.py_spy is not None
                            and name == "strongroom"
                            and op == "Encrypt"
                            and conns == max(connections)
                            and rep == 0
                        ):
                            profile = args.py_spy
                        sent = "Encrypt" if name == "stack" else op
                        r = measure(
                            args, targets[name], name, sent, conns, plaintext, workdir, profile
                        )
                        repeated[name].append(r)
                        all_runs.append(r)
                        status = "ok" if r.ok else f"PROBLEM: {r.problem or r.errors}"
                        label = f"{op} [{rep + 1}/{args.repeat}]" if args.repeat > 1 else op
                        print(
                            f"  {name:<10} {label:<22} c={conns:<3} {r.rps:>9,.0f} req/s"
                            f"  p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:7.2f} ms"
                            f"  server cpu {r.server_cpu:.2f}  other {r.other_cpu:.2f}  {status}"
                            + ("  [py-spy attached]" if profile else ""),
                            flush=True,
                        )
                        failed |= not r.ok
                for name in servers:
                    runs.append(median_run(repeated[name]))
        results["runs_all"] = [{**asdict(r), "ok": r.ok} for r in all_runs]

        loop: dict[str, float] = {}
        if args.loop_seconds > 0 and "strongroom" in targets:
            sr_t = targets["strongroom"]
            reply = sr_t.client().encrypt(KeyId=sr_t.key_id, Plaintext=plaintext)
            canned = json.dumps(
                {
                    "CiphertextBlob": base64.b64encode(reply["CiphertextBlob"]).decode(),
                    "KeyId": reply["KeyId"],
                    "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                },
                separators=(",", ":"),
            ).encode()
            inst = start_instant(workdir, canned)
            inst_t = Target("instant", inst, "instant", "instant", key_id=sr_t.key_id)
            clients = {"strongroom": sr_t.client(), "instant": inst_t.client()}
            if "moto" in targets:
                clients["moto"] = targets["moto"].client()
            keys = {"strongroom": sr_t.key_id, "instant": sr_t.key_id}
            if "moto" in targets:
                keys["moto"] = targets["moto"].key_id
            servers = {
                "strongroom": sr_t.server,
                "instant": inst,
                "moto": targets.get("moto", sr_t).server,
            }
            # Alternate in rounds and keep each side's best quiet measurement, to damp noise.
            quiet: dict[str, bool] = {}
            for round_no in range(2 + args.retry_noisy):
                if round_no >= 2 and all(quiet.values()):
                    break
                for name, client in clients.items():
                    if round_no >= 2 and quiet.get(name):
                        continue
                    if args.wait_quiet > 0:
                        wait_quiet(args.wait_quiet)
                    m0, s0, p0 = cpu_times(), servers[name].cpu_seconds(), time.process_time()
                    t0 = time.monotonic()
                    rate = boto3_loop(client, keys[name], plaintext, args.loop_seconds / 2)
                    wall = time.monotonic() - t0
                    other = (
                        (cpu_times()[0] - m0[0])
                        - (servers[name].cpu_seconds() - s0)
                        - (time.process_time() - p0)
                    ) / wall
                    is_quiet = other <= NOISY
                    if (is_quiet, rate) > (quiet.get(name, False), loop.get(name, 0.0)):
                        loop[name], quiet[name] = rate, is_quiet
            stop(inst)
            results["boto3_loop_quiet"] = quiet

        print()
        print(
            f"Strongroom ({args.workers} worker{'s' if args.workers > 1 else ''}, "
            f"audit_fsync {audit_fsync}) vs {' and '.join(n for n in names if n != 'strongroom')}; "
            f"wrk -t{args.wrk_threads}, {args.duration:g} s per run, {os.cpu_count()} cores"
        )
        if runs:
            print_table(runs)
        if loop:
            ratio = loop["strongroom"] / loop["instant"]
            print()
            print("boto3 loop, one client calling Encrypt (calls/s):")
            for name, rate in loop.items():
                print(f"  {name:<11} {rate:>8,.0f}")
            # Issue 2's target (>= 90 %) is withdrawn (issue 17): a lone request's durable
            # audit flush takes most of that budget; lone_bench.py measures the server side.
            print(f"  strongroom / instant = {ratio:.1%}  (reported only; see lone_bench.py)")
            if not all(results.get("boto3_loop_quiet", {}).values()):
                print(
                    "  WARNING: other processes were busy during the boto3 loop; the ratio is noisy"
                )
            results["boto3_loop"] = {**loop, "ratio_strongroom_instant": ratio}
        bad = [r for r in runs if not r.ok]
        if bad:
            print()
            print("!" * 78)
            print(
                f"!! {len(bad)} run(s) had errors or non-2xx replies; their numbers are not valid:"
            )
            for r in bad:
                print(f"!!   {r.server} {r.operation} c={r.connections}: {r.problem or r.errors}")
            print("!" * 78)
        results["runs"] = [{**asdict(r), "ok": r.ok} for r in runs]
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
            print(f"\nresults written to {args.json}")
        return 1 if failed else 0
    except BaseException:
        for server in list(STARTED):
            tail = server.tail(15)
            if tail:
                print(f"--- last lines of {server.name}'s log ---\n{tail}", file=sys.stderr)
        raise
    finally:
        stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
