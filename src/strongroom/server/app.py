"""The ASGI application: routes API requests to the pipeline with their protocol, answers
health checks, and runs the background jobs over the process's lifespan."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from strongroom.console.http import is_console_path
from strongroom.domain.errors import StorageError, UnknownOperationException
from strongroom.domain.requestids import new_id
from strongroom.protocol.model import load_model, load_ssm_model
from strongroom.protocol.query import is_query_request
from strongroom.server.asgi import Receive, Scope, Send, reply
from strongroom.server.jobs import Jobs
from strongroom.server.metrics import DatabaseCounts, Metrics, run_directory
from strongroom.server.pipeline import Pipeline
from strongroom.server.protocols import (
    SSM_TARGET_PREFIX,
    AwsJson,
    AwsQuery,
    SsmJson,
    WireProtocol,
)
from strongroom.server.wiring import Runtime
from strongroom.services.core import Core

if TYPE_CHECKING:
    from strongroom.console.app import Console

log = logging.getLogger("strongroom.server")


_SSM_TARGET = SSM_TARGET_PREFIX.encode()


def _target(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The X-Amz-Target of ASGI ``headers`` (JSON protocols' operation header), if any:
    ``TrentService.<Op>`` for KMS, ``AmazonSSM.<Op>`` for Parameter Store."""
    for name, value in headers:
        if name == b"x-amz-target":
            return value
    return None


class KmsApp:
    """One per process: KMS (AWS JSON 1.1), SSM's Parameter Store (AWS JSON 1.1) and STS
    (query) on one port, ``GET /health``, 404 for anything else."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kms")
        self._kms = AwsJson(load_model())
        self._sts = AwsQuery()
        # Parameter Store's model and the console (~5 and ~4 MiB a worker) are loaded by the
        # first request that needs them: a server not asked for them does without.
        self._ssm_wire: SsmJson | None = None
        self._console_app: Console | None = None
        settings = runtime.settings
        self.metrics = Metrics(run_directory(settings.data_dir, settings.workers))
        runtime.audit.on_flush = self.metrics.observe_audit_flush
        self._jobs = Jobs(runtime, self._pool, metrics=self.metrics)
        catch_up = self._jobs.catch_up if settings.strict_consistency else None
        self._pipeline = Pipeline(runtime, self._pool, metrics=self.metrics, catch_up=catch_up)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" and is_console_path(scope["path"]):
            await self._console()(scope, receive, send)
        elif kind == "http":
            if scope["method"] == "POST":
                # A form-encoded body without X-Amz-Target is STS's query protocol
                # (AssumeRole); anything else is KMS's AWS JSON 1.1, which answers a wrong
                # Content-Type itself (curl -d sends a form's Content-Type).
                headers = scope["headers"]
                target = _target(headers)
                wire: WireProtocol
                if target is None:
                    wire = self._sts if is_query_request(headers) else self._kms
                else:
                    wire = self._ssm() if target.startswith(_SSM_TARGET) else self._kms
                await self._pipeline(wire, scope, receive, send)
            elif scope["method"] == "GET" and scope["path"] == "/health":
                await reply(send, 200, b'{"status":"ok"}', b"application/json", [])
            elif scope["method"] == "GET" and scope["path"] == "/ready":
                await self._ready(send)
            elif scope["method"] == "GET" and scope["path"] == "/metrics":
                await self._metrics(send)
            else:
                request_id = new_id()
                error = UnknownOperationException(
                    f"{scope['method']} {scope['path']}: the KMS API is POST with X-Amz-Target"
                )
                body, _, headers = self._kms.encode_error(error, request_id)
                extra = [(b"x-amzn-requestid", request_id.encode()), *headers]
                await reply(send, 404, body, self._kms.content_type, extra)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    def _ssm(self) -> SsmJson:
        """Parameter Store's wire protocol, its model read on first use."""
        if self._ssm_wire is None:
            self._ssm_wire = SsmJson(load_ssm_model())
        return self._ssm_wire

    def _console(self) -> Console:
        """The web console (/console), made on first use; its requests go through this
        process's pipeline too."""
        if self._console_app is None:
            from strongroom.console.app import Console

            runtime = self.rt
            self._console_app = Console(
                kms=partial(self._pipeline, self._kms),
                sts=partial(self._pipeline, self._sts),
                secrets=runtime.credentials,
                root_key=lambda: runtime.core.root_key,
                settings=runtime.settings,
            )
        return self._console_app

    async def _ready(self, send: Send) -> None:
        """200 when the database and the root key answer (a query, and a wrap and unwrap
        under the root key: in its token, for an HSM), 503 naming what did not."""
        loop = asyncio.get_running_loop()
        failed = await loop.run_in_executor(self._pool, _not_ready, self.rt.core)
        if failed is None:
            await reply(send, 200, b'{"status":"ready"}', b"application/json", [])
        else:
            body = json.dumps({"status": "not ready", "failed": failed}).encode()
            await reply(send, 503, body, b"application/json", [])

    async def _metrics(self, send: Send) -> None:
        """The Prometheus text format of every worker's counts and the database's."""
        loop = asyncio.get_running_loop()
        core = self.rt.core
        try:
            counts = await loop.run_in_executor(self._pool, core.store.counts, datetime.now(UTC))
            database: DatabaseCounts | None = DatabaseCounts(*counts)
        except StorageError:  # the rest is still worth scraping
            database = None
        self.metrics.note_cache(core.cache.hits, core.cache.misses)
        body = await loop.run_in_executor(self._pool, self.metrics.exposition, database)
        from strongroom.server.exposition import CONTENT_TYPE  # imported by exposition

        await reply(send, 200, body, CONTENT_TYPE, [])

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def startup(self) -> None:
        """Open the audit log and start the background jobs (on the running loop)."""
        self.rt.audit.start()
        # Everything loaded so far lives as long as the process: keep it out of the
        # collector's way, and collect young objects less often (p99 latency).
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
        if self.rt.quotas is not None:
            self.rt.quotas.start()
        self._jobs.start()

    async def shutdown(self) -> None:
        """Stop the jobs, then write out the audit log and close the pool, the connections
        to custom key stores (tokens, XKS proxies) and the store."""
        await self._jobs.stop()
        if self.rt.quotas is not None:
            self.rt.quotas.stop()
        await asyncio.get_running_loop().run_in_executor(None, self.rt.audit.stop)
        self._pool.shutdown(wait=True)
        self.rt.core.xks_clients.close()
        self.rt.core.store_tokens.close()
        self.rt.core.store.close()


def _not_ready(core: Core) -> str | None:
    """What does not answer: "database", "root key", or None."""
    try:
        core.store.latest_change()
    except StorageError:
        return "database"
    probe = os.urandom(16)
    try:
        if core.root_key.unwrap(core.root_key.wrap(probe, b"ready"), b"ready") != probe:
            return "root key"
    except Exception:  # any failure of the token or key is "not ready"
        log.warning("readiness: the root key does not answer", exc_info=True)
        return "root key"
    return None
