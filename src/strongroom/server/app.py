"""The ASGI application: routes API requests to the pipeline with their protocol, answers
health checks, and runs the background jobs over the process's lifespan."""

from __future__ import annotations

import asyncio
import gc
from concurrent.futures import ThreadPoolExecutor

from strongroom.domain.errors import UnknownOperationException
from strongroom.domain.requestids import new_id
from strongroom.protocol.model import load_model
from strongroom.protocol.query import is_query_request
from strongroom.server.asgi import Receive, Scope, Send, reply
from strongroom.server.jobs import Jobs
from strongroom.server.pipeline import Pipeline
from strongroom.server.protocols import AwsJson, AwsQuery
from strongroom.server.wiring import Runtime


def _has_target(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether ASGI ``headers`` carry X-Amz-Target (JSON protocols' operation header)."""
    return any(name == b"x-amz-target" for name, _ in headers)


class KmsApp:
    """One per process: KMS (AWS JSON 1.1) and STS (query) on one port, ``GET /health``,
    404 for anything else."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kms")
        self._kms = AwsJson(load_model())
        self._sts = AwsQuery()
        self._pipeline = Pipeline(runtime, self._pool)
        self._jobs = Jobs(runtime, self._pool)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if scope["method"] == "POST":
                # A form-encoded body without X-Amz-Target is STS's query protocol
                # (AssumeRole); anything else is KMS's AWS JSON 1.1, which answers a wrong
                # Content-Type itself (curl -d sends a form's Content-Type).
                headers = scope["headers"]
                sts = is_query_request(headers) and not _has_target(headers)
                wire = self._sts if sts else self._kms
                await self._pipeline(wire, scope, receive, send)
            elif scope["method"] == "GET" and scope["path"] == "/health":
                await reply(send, 200, b'{"status":"ok"}', b"application/json", [])
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
        """Stop the jobs, then write out the audit log and close the pool and the store."""
        await self._jobs.stop()
        if self.rt.quotas is not None:
            self.rt.quotas.stop()
        await asyncio.get_running_loop().run_in_executor(None, self.rt.audit.stop)
        self._pool.shutdown(wait=True)
        self.rt.core.store.close()
