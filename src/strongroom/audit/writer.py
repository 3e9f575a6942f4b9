"""Durable, hash-chained audit writing with group commit.

Requests hand their event to one writer thread and wait for it; the thread takes every
event waiting at that moment and stores them in one transaction, so concurrent
requests share a commit (and its fsync) instead of paying one each. Each writer keeps
its own chain: every row stores the hash of the row before it in the same chain,
``hash = sha256(prev_hash || body)``, so an edited or removed row breaks the chain.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

import orjson

from strongroom.storage.ports import AuditRow, Store

log = logging.getLogger(__name__)

GENESIS = "0" * 64
_MAX_BATCH = 512


def chain_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256(prev_hash.encode() + body.encode()).hexdigest()


class AuditWriter:
    """Writes events in batches from a thread of its own; ``submit`` returns a Future that
    completes once the event is committed (or fails with the storage error)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._queue: queue.SimpleQueue[tuple[Mapping[str, Any], Future[None]] | None] = (
            queue.SimpleQueue()
        )
        self.chain = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._prev = GENESIS
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def submit(self, event: Mapping[str, Any]) -> Future[None]:
        future: Future[None] = Future()
        self._queue.put((event, future))
        return future

    def write_now(self, event: Mapping[str, Any]) -> None:
        """Submit and wait: for callers outside the event loop."""
        self.start()
        self.submit(event).result()

    def stop(self) -> None:
        if self._started:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._started = False

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < _MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            self._write(batch)

    def _write(self, batch: list[tuple[Mapping[str, Any], Future[None]]]) -> None:
        rows = []
        prev = self._prev
        for event, _ in batch:
            body = orjson.dumps(event).decode()
            digest = chain_hash(prev, body)
            rows.append(_row(event, body, self.chain, prev, digest))
            prev = digest
        for attempt in range(3):
            try:
                with self._store.transaction() as tx:
                    tx.insert_audit_rows(rows)
                break
            except Exception as exc:
                if attempt == 2:
                    log.exception("audit write failed; failing %d requests", len(batch))
                    for _, future in batch:
                        future.set_exception(exc)
                    return
                time.sleep(0.05 * (attempt + 1))
        self._prev = prev
        for _, future in batch:
            future.set_result(None)


def _row(event: Mapping[str, Any], body: str, chain: str, prev: str, digest: str) -> AuditRow:
    resources = event.get("resources") or []
    identity = event.get("userIdentity") or {}
    return AuditRow(
        event_id=event["eventID"],
        event_time=time.time(),
        event_name=event["eventName"],
        region=event["awsRegion"],
        principal_arn=identity.get("arn"),
        resources=tuple(r["ARN"] for r in resources),
        error_code=event.get("errorCode"),
        chain=chain,
        prev_hash=prev,
        hash=digest,
        body=body,
    )


def verify_chains(store: Store) -> tuple[int, list[str]]:
    """Walk every chain in order; return the number of events and the problems found."""
    problems: list[str] = []
    last: dict[str, str] = {}
    count = 0
    with store.transaction() as tx:
        rows = tx.query_audit(limit=10**9)
    for row in rows:
        count += 1
        prev = last.get(row.chain, GENESIS)
        if row.prev_hash != prev:
            problems.append(f"event {row.event_id}: chain {row.chain} broken before it")
        if chain_hash(row.prev_hash, row.body) != row.hash:
            problems.append(f"event {row.event_id}: body does not match its hash")
        last[row.chain] = row.hash
    return count, problems
