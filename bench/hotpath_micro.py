#!/usr/bin/env python3
"""In-process timing of each step of Strongroom's Encrypt path (no HTTP, no sampling).

Builds a real runtime on a temporary data directory (SQLite, root key file, audit log),
signs an Encrypt request with ``strongroom.auth.sigv4.sign`` and times, one by one, the
steps ``KmsApp._kms`` runs for it; then one group commit of the audit log
(``AuditLog._write``: chain hashes, one ``write``, one ``fdatasync``) at several group
sizes with fsync on and off, and the whole ASGI app (uvloop, fake receive/send) driven
sequentially and with 64 concurrent requests, with fsync on and off.

    python bench/hotpath_micro.py [--n 3000]

Numbers are microseconds of wall time on an otherwise idle machine; they are what one
request costs in the server's process, before uvicorn's own share (see stack_bench.py).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson


def timeit(fn: Any, n: int) -> float:
    """Mean microseconds per call of ``fn()`` over ``n`` calls (after n/10 warm-up calls)."""
    for _ in range(max(1, n // 10)):
        fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=3000, help="calls per measurement")
    args = p.parse_args()
    n = args.n

    from strongroom.audit.events import build_event
    from strongroom.audit.log import GENESIS, AuditLog, chain_hash
    from strongroom.auth.sigv4 import HttpRequest, sign
    from strongroom.domain.requestids import new_id
    from strongroom.handlers.registry import HANDLERS
    from strongroom.server import app as app_module
    from strongroom.server.app import KmsApp
    from strongroom.server.settings import load_settings
    from strongroom.server.wiring import build_runtime, prepare
    from strongroom.services.core import RequestContext

    tmp = Path(tempfile.mkdtemp(prefix="hotpath-"))
    settings = load_settings(data_dir=tmp, log_level="warning")
    prepare(settings)
    rt = build_runtime(settings)
    import configparser

    creds = configparser.ConfigParser()
    creds.read(settings.credentials_path)
    ak = creds["strongroom"]["aws_access_key_id"]
    sk = creds["strongroom"]["aws_secret_access_key"]
    kms = KmsApp(rt)

    def signed(operation: str, doc: dict[str, Any]) -> tuple[list[tuple[bytes, bytes]], bytes]:
        body = json.dumps(doc).encode()
        amz_date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        hdrs = [
            ("host", "127.0.0.1:4599"),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", f"TrentService.{operation}"),
            ("x-amz-date", amz_date),
        ]
        req = HttpRequest("POST", "/", "", hdrs, body)
        auth = sign(
            req,
            access_key_id=ak,
            secret_access_key=sk,
            region="us-east-1",
            service="kms",
            amz_date=amz_date,
        )
        raw = [(k.encode(), v.encode()) for k, v in hdrs]
        raw += [
            (b"authorization", auth.encode()),
            (b"user-agent", b"Boto3/1.43 md/Botocore#1.43 ua/2.1 os/linux"),
            (b"content-length", str(len(body)).encode()),
        ]
        return raw, body

    # A key, through the handler as CreateKey would run it.
    raw, body = signed("CreateKey", {})
    headers = [(k.decode("latin-1").lower(), v.decode("utf-8", "replace")) for k, v in raw]
    now = datetime.now(UTC)
    caller = rt.authenticator.authenticate(
        HttpRequest("POST", "/", "", headers, body),
        now=now,
        source_ip="127.0.0.1",
        user_agent="bench",
    )
    key_id = HANDLERS["CreateKey"](rt.core, RequestContext(caller, "x"), {})["KeyMetadata"]["KeyId"]

    plaintext = os.urandom(32)
    raw, body = signed(
        "Encrypt", {"KeyId": key_id, "Plaintext": base64.b64encode(plaintext).decode()}
    )
    codec = kms.model.operation("Encrypt")
    handler = HANDLERS["Encrypt"]
    headers = [(k.decode("latin-1").lower(), v.decode("utf-8", "replace")) for k, v in raw]
    request = HttpRequest("POST", "/", "", headers, body)
    params = codec.decode(body)

    def authenticate() -> Any:
        return rt.authenticator.authenticate(
            request, now=datetime.now(UTC), source_ip="127.0.0.1", user_agent="bench"
        )

    def run_handler() -> Any:
        return handler(rt.core, RequestContext(caller, "r"), params)

    result = run_handler()
    ctx = RequestContext(caller, "r", [result["KeyId"]])

    def event() -> dict[str, Any]:
        return build_event(
            event_time=now,
            event_name="Encrypt",
            region="us-east-1",
            request_id=new_id(),
            source_ip="127.0.0.1",
            user_agent="Boto3/1.43",
            user_identity=app_module._identity(caller),
            request_parameters=params,
            response_elements=result,
            resources=ctx.resources,
            error_code=None,
            error_message=None,
        )

    ev = event()
    rows: list[tuple[str, float]] = []

    def row(name: str, us: float) -> None:
        rows.append((name, us))
        print(f"  {us:8.1f} us  {name}", flush=True)

    print("Encrypt request path, step by step (mean of", n, "calls):")
    row(
        "header list: decode + lower-case (app._kms)",
        timeit(
            lambda: [(k.decode("latin-1").lower(), v.decode("utf-8", "replace")) for k, v in raw], n
        ),
    )
    row("new_id() (request id; build_event makes the event id)", timeit(new_id, n))
    row("datetime.now(UTC)", timeit(lambda: datetime.now(UTC), n))
    row(
        "SigV4: authenticate (parse + canonical request + 2x SHA-256 + HMAC)",
        timeit(authenticate, n),
    )
    row("JSON codec: decode + validate request", timeit(lambda: codec.decode(body), n))
    row("handler: resolve + authorize + state + AES-GCM seal", timeit(run_handler, n))
    row("JSON codec: encode result", timeit(lambda: codec.encode(result), n))
    row("audit: build_event + _identity", timeit(event, n))
    row(
        "audit: entry = time + orjson.dumps(event) (AuditLog.submit)",
        timeit(lambda: b"%.6f " % time.time() + orjson.dumps(ev), n),
    )
    entry = b"%.6f " % time.time() + orjson.dumps(ev)
    row(
        "audit: chain hash of one entry (writer thread)",
        timeit(lambda: chain_hash(GENESIS, entry), n),
    )
    row(f"audit entry size (bytes, not us): {len(entry)}", 0.0)

    # One group commit of the writer thread, called synchronously (no waiters to wake).
    for fsync in (True, False):
        audit = AuditLog(tmp / f"audit-fsync-{'on' if fsync else 'off'}", fsync=fsync)
        audit.start()
        print(f"\nAudit log, one group commit (chain hashes + write + fdatasync={fsync}):")
        for size in (1, 8, 64, 256):
            reps = max(50, n // size)
            group = [(entry, None)] * size
            us = timeit(lambda group=group, audit=audit: audit._write(group), reps)
            row(
                f"group of {size:>3}: {us:8.1f} us per commit = {us / size:6.1f} us per event",
                us / size,
            )
        audit.stop()

    # End to end through the ASGI app, without an HTTP server.
    print("\nKmsApp end to end (uvloop, fake receive/send; audit durable before the reply):")
    import uvloop

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": raw,
        "client": ("127.0.0.1", 5000),
    }
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def drive() -> None:
        kms.startup()
        try:
            for fsync in (True, False):
                rt.audit.fsync = fsync  # read by the writer thread at every group commit
                for _ in range(200):
                    await kms(scope, receive, send)
                t0 = time.perf_counter()
                for _ in range(n):
                    await kms(scope, receive, send)
                row(
                    f"fsync {'on ' if fsync else 'off'}: sequential (like c=1), per request",
                    (time.perf_counter() - t0) / n * 1e6,
                )
                conc = 64
                t0 = time.perf_counter()
                total = 0
                while total < n * 2:
                    await asyncio.gather(*(kms(scope, receive, send) for _ in range(conc)))
                    total += conc
                row(
                    f"fsync {'on ' if fsync else 'off'}: {conc} concurrent (like c={conc}), "
                    "per request",
                    (time.perf_counter() - t0) / total * 1e6,
                )
        finally:
            await kms.shutdown()

    cpu0 = time.process_time()
    try:
        uvloop.run(drive())
    finally:
        rt.core.store.close()
        shutil.rmtree(tmp, ignore_errors=True)
    bad = [s for s in statuses if s != 200]
    cpu = time.process_time() - cpu0
    print(f"  ({len(statuses)} requests, {len(bad)} non-200; process CPU {cpu:.1f} s)")
    if bad:
        print("  !! non-200 replies: the numbers above are not valid", file=sys.stderr)


if __name__ == "__main__":
    main()
