#!/usr/bin/env python3
"""Run ``strongroom serve`` (one worker) with experimental monkeypatches, to measure what a
proposed server change would buy before anyone makes it. NOT for production; the server
code is untouched.

    python bench/patched_server.py --patch fast-audit [--patch ...] -- serve --port P --data-dir D

Patches (combine freely):

* ``fast-audit``   — the audit writer keeps its batching and hash chain, but inserts with the
                     raw sqlite3 driver (executemany over tuples, one BEGIN IMMEDIATE/COMMIT
                     per batch, same table, same synchronous=FULL) and completes a whole batch
                     with ONE ``loop.call_soon_threadsafe`` instead of a concurrent Future +
                     ``asyncio.wrap_future`` per request.
* ``sync-normal``  — with fast-audit: ``PRAGMA synchronous=NORMAL`` on the audit connection
                     (WAL: a commit survives a process crash, not a power cut).
* ``no-audit``     — the audit future completes at once and nothing is written (upper bound:
                     what the rest of the request path costs).
* ``cheap-event``  — build_event with a per-second cached timestamp string and no second uuid4.
* ``gc-freeze``    — gc.freeze() after start-up and gen-0 threshold 50000 (fewer GC passes).

``kms_bench.py --server-cmd`` is not needed: start this, then point wrk at it, or use
``kms_bench.py --patch NAME`` which starts Strongroom through this launcher.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import os
import queue
import sqlite3
import sys
import threading
import time
from typing import Any


def patch_fast_audit(sync: str) -> None:
    from strongroom.audit import writer as w

    class FastAuditWriter:
        def __init__(self, store: Any) -> None:
            self._store = store
            self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
            self.chain = f"bench-{os.getpid()}-{os.urandom(4).hex()}"
            self._prev = w.GENESIS
            self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
            self._started = False
            self._conn: sqlite3.Connection | None = None
            self._columns: list[str] = []
            self._insert = ""
            self._resources = False

        def start(self) -> None:
            if not self._started:
                self._started = True
                self._thread.start()

        def submit(self, event: Any) -> Any:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is None:  # called from a thread: fall back to a concurrent future
                from concurrent.futures import Future

                fut: Any = Future()
                self._queue.put((event, fut, None))
                return fut
            fut = loop.create_future()
            self._queue.put((event, fut, loop))
            return fut

        def write_now(self, event: Any) -> None:
            self.start()
            fut = self.submit(event)
            if hasattr(fut, "result") and not asyncio.isfuture(fut):
                fut.result()

        def stop(self) -> None:
            if self._started:
                self._queue.put(None)
                self._thread.join(timeout=10)
                self._started = False

        def _connect(self) -> sqlite3.Connection:
            url = self._store.url
            path = url.split("sqlite:///", 1)[1]
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={sync}")
            conn.execute("PRAGMA busy_timeout=30000")
            # Follow whatever the audit schema is today (it changes): insert the columns it has.
            known = (
                "event_id",
                "event_time",
                "event_name",
                "region",
                "principal_arn",
                "key_arn",
                "error_code",
                "chain",
                "prev_hash",
                "hash",
                "body",
            )
            have = {row[1] for row in conn.execute("PRAGMA table_info(audit_events)")}
            self._columns = [c for c in known if c in have]
            self._insert = (
                f"INSERT INTO audit_events ({', '.join(self._columns)}) "
                f"VALUES ({', '.join('?' * len(self._columns))})"
            )
            resource_cols = {row[1] for row in conn.execute("PRAGMA table_info(audit_resources)")}
            self._resources = {"event_id", "arn"} <= resource_cols
            return conn

        def _run(self) -> None:
            self._conn = self._connect()
            while True:
                item = self._queue.get()
                if item is None:
                    return
                batch = [item]
                while len(batch) < 512:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        self._write(batch)
                        return
                    batch.append(nxt)
                self._write(batch)

        def _write(self, batch: list[Any]) -> None:
            import orjson

            rows = []
            resource_rows = []
            prev = self._prev
            now = time.time()
            for event, _, _ in batch:
                body = orjson.dumps(event)
                digest = hashlib.sha256(prev.encode() + body).hexdigest()
                resources = [r["ARN"] for r in event.get("resources") or []]
                identity = event.get("userIdentity") or {}
                values = {
                    "event_id": event["eventID"],
                    "event_time": now,
                    "event_name": event["eventName"],
                    "region": event["awsRegion"],
                    "principal_arn": identity.get("arn"),
                    "key_arn": resources[0] if resources else None,
                    "error_code": event.get("errorCode"),
                    "chain": self.chain,
                    "prev_hash": prev,
                    "hash": digest,
                    "body": body.decode(),
                }
                rows.append(tuple(values[c] for c in self._columns))
                resource_rows += [(event["eventID"], arn) for arn in resources]
                prev = digest
            assert self._conn is not None
            error: BaseException | None = None
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany(self._insert, rows)
                if self._resources and resource_rows:
                    self._conn.executemany(
                        "INSERT INTO audit_resources (event_id, arn) VALUES (?, ?)", resource_rows
                    )
                self._conn.execute("COMMIT")
                self._prev = prev
            except BaseException as exc:  # noqa: BLE001
                error = exc
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
            by_loop: dict[Any, list[Any]] = {}
            for _, fut, loop in batch:
                if loop is None:
                    fut.set_exception(error) if error else fut.set_result(None)
                else:
                    by_loop.setdefault(loop, []).append(fut)
            for loop, futs in by_loop.items():
                loop.call_soon_threadsafe(_complete, futs, error)

    def _complete(futs: list[asyncio.Future[None]], error: BaseException | None) -> None:
        for fut in futs:
            if not fut.done():
                fut.set_exception(error) if error else fut.set_result(None)

    from strongroom.server import wiring

    wiring.AuditWriter = FastAuditWriter  # type: ignore[misc,assignment]


def patch_no_audit() -> None:
    from strongroom.audit import writer as w

    class NoAudit(w.AuditWriter):
        def submit(self, event: Any) -> Any:
            from concurrent.futures import Future

            fut: Future[None] = Future()
            fut.set_result(None)
            return fut

    from strongroom.server import wiring

    wiring.AuditWriter = NoAudit  # type: ignore[misc]


def patch_cheap_event() -> None:
    from strongroom.audit import events
    from strongroom.server import app

    cache: dict[int, str] = {}

    # Cheap path: rebuild without uuid4/strftime per call.
    def fast_build_event(
        *,
        event_time: Any,
        event_name: str,
        region: str,
        request_id: str,
        source_ip: str,
        user_agent: str,
        user_identity: Any,
        request_parameters: Any,
        response_elements: Any,
        resources: list[str],
        error_code: Any,
        error_message: Any,
    ) -> dict[str, Any]:
        second = int(event_time.timestamp())
        stamp = cache.get(second)
        if stamp is None:
            cache.clear()
            stamp = cache[second] = event_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        event: dict[str, Any] = {
            "eventVersion": events.EVENT_VERSION,
            "userIdentity": user_identity,
            "eventTime": stamp,
            "eventSource": events.EVENT_SOURCE,
            "eventName": event_name,
            "awsRegion": region,
            "sourceIPAddress": source_ip,
            "userAgent": user_agent,
            "requestParameters": events.scrub(request_parameters),
            "responseElements": events.scrub(response_elements),
            "requestID": request_id,
            "eventID": os.urandom(16).hex(),
            "readOnly": event_name.startswith(("Describe", "List", "Get")),
            "resources": [
                {"accountId": arn.split(":")[4], "type": "AWS::KMS::Key", "ARN": arn}
                for arn in dict.fromkeys(resources)
            ],
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "eventCategory": "Management",
        }
        if error_code is not None:
            event["errorCode"] = error_code
            event["errorMessage"] = error_message or ""
        return event

    app.build_event = fast_build_event  # type: ignore[assignment]


PATCHES = ("fast-audit", "sync-normal", "no-audit", "cheap-event", "gc-freeze")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--patch", action="append", default=[], choices=PATCHES)
    p.add_argument(
        "rest", nargs=argparse.REMAINDER, help="-- serve ARGS (strongroom's command line)"
    )
    args = p.parse_args()
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    if "--workers" in rest and rest[rest.index("--workers") + 1] != "1":
        print(
            "patched_server: only --workers 1 (patches do not reach spawned workers)",
            file=sys.stderr,
        )
        return 2
    patches = set(args.patch)
    if "no-audit" in patches:
        patch_no_audit()
    elif "fast-audit" in patches:
        patch_fast_audit("NORMAL" if "sync-normal" in patches else "FULL")
    if "cheap-event" in patches:
        patch_cheap_event()
    if "gc-freeze" in patches:
        from strongroom.server.app import KmsApp

        original_startup = KmsApp.startup

        def startup(self: Any) -> None:
            original_startup(self)
            gc.collect()
            gc.freeze()
            gc.set_threshold(50_000, 20, 20)

        KmsApp.startup = startup  # type: ignore[method-assign]
    print(f"patched_server: patches {sorted(patches) or 'none'}", file=sys.stderr, flush=True)
    from strongroom.cli.main import main as strongroom_main

    return strongroom_main(rest)


if __name__ == "__main__":
    sys.exit(main())
