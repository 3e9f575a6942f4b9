"""The ASGI application: routing on X-Amz-Target, request ids, health, lifespan jobs."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from strongroom.audit.events import build_event, caller_identity
from strongroom.auth.sigv4 import HttpRequest
from strongroom.domain.errors import (
    KmsError,
    KMSInternalException,
    SerializationException,
    UnknownOperationException,
    UnsupportedOperationException,
)
from strongroom.domain.models import Caller
from strongroom.domain.requestids import new_id
from strongroom.handlers.registry import HANDLERS, HOT_PATH
from strongroom.protocol.codec import encode_error
from strongroom.protocol.model import load_model
from strongroom.protocol.query import is_query_request
from strongroom.server.sts import Receive, Scope, Send, StsEndpoint
from strongroom.server.wiring import Runtime
from strongroom.services.core import RequestContext
from strongroom.services.deletion import delete_due_keys
from strongroom.services.imports import expire_due_materials
from strongroom.services.multiregion import complete_replication
from strongroom.services.rotation import rotate_due_keys
from strongroom.services.sessions import prune_sessions

log = logging.getLogger("strongroom.server")

TARGET_PREFIX = "TrentService."
MAX_BODY = 1 << 20
CHANGE_RETENTION = timedelta(hours=1)
JSON_TYPE = b"application/x-amz-json-1.1"
IDLE_GAP = 100e-6  # seconds idle before a request that counts as finding the process idle


class KmsApp:
    """One per process. Handlers of hot-path operations run on the event loop; the rest in
    a thread pool. Every request's audit event is committed before its reply is sent."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.model = load_model()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kms")
        self._tasks: list[asyncio.Task[None]] = []
        self._change_seq = 0
        self._sts = StsEndpoint(runtime, self._pool, _read_body, _reply)
        self._active = 0  # KMS requests in flight in this process
        self._idle_since = 0.0  # time.monotonic() when the last of them finished

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if scope["method"] == "POST":
                # AWS JSON 1.1 routes on X-Amz-Target; the path only counts in the signature.
                # A form-encoded body is STS's query protocol (AssumeRole).
                if is_query_request(scope["headers"]):
                    await self._sts(scope, receive, send)
                    return
                self._active += 1
                try:
                    await self._kms(scope, receive, send)
                finally:
                    self._active -= 1
                    if not self._active:
                        self._idle_since = time.monotonic()
            elif scope["method"] == "GET" and scope["path"] == "/health":
                await _reply(send, 200, b'{"status":"ok"}', b"application/json", [])
            else:
                error = UnknownOperationException(
                    f"{scope['method']} {scope['path']}: the KMS API is POST with X-Amz-Target"
                )
                extra = [
                    (b"x-amzn-requestid", new_id().encode()),
                    (b"x-amzn-errortype", error.code.encode()),
                ]
                await _reply(send, 404, encode_error(error), JSON_TYPE, extra)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    # -- lifespan -------------------------------------------------------------------------
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
        self.rt.audit.start()
        # Everything loaded so far lives as long as the process: keep it out of the
        # collector's way, and collect young objects less often (p99 latency).
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
        self._change_seq = self.rt.core.store.latest_change()
        s = self.rt.settings
        self._tasks = [
            asyncio.create_task(self._every(s.change_poll_seconds, self._poll_changes)),
            asyncio.create_task(self._every(s.job_interval_seconds, self._run_jobs)),
            # AWS replicates a multi-Region key "after a few seconds": as often as changes.
            asyncio.create_task(self._every(s.change_poll_seconds, self._complete_replication)),
        ]

    async def shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(None, self.rt.audit.stop)
        self._pool.shutdown(wait=True)
        self.rt.core.store.close()

    async def _every(self, seconds: float, job: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(seconds)
            try:
                await loop.run_in_executor(self._pool, job)
            except Exception:
                log.exception("scheduled job %s failed", job.__name__)

    def _poll_changes(self) -> None:
        seq, arns = self.rt.core.store.changes_since(self._change_seq)
        self._change_seq = seq
        for arn in arns:
            self.rt.core.cache.invalidate(arn)
            if arn.startswith("arn:aws:iam::"):  # a principal's identity policies changed
                self.rt.credentials.forget_principal(arn)

    def _complete_replication(self) -> None:
        complete_replication(self.rt.core)

    def _run_jobs(self) -> None:
        delete_due_keys(self.rt.core)
        rotate_due_keys(self.rt.core)
        expire_due_materials(self.rt.core)
        prune_sessions(self.rt.core)
        with self.rt.core.store.transaction() as tx:
            tx.changes.prune(datetime.now(UTC) - CHANGE_RETENTION)

    # -- the KMS endpoint ---------------------------------------------------------------
    async def _kms(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = new_id()
        found_idle = self._active == 1 and time.monotonic() - self._idle_since > IDLE_GAP
        headers = [
            (k.decode("latin-1").lower(), v.decode("utf-8", "replace")) for k, v in scope["headers"]
        ]
        fields = dict(headers)  # a repeated name: its last value, as SigV4 reads it
        target = fields.get("x-amz-target", "")
        user_agent = fields.get("user-agent", "")
        operation = target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else target
        source_ip = scope["client"][0] if scope.get("client") else "127.0.0.1"
        now = datetime.now(UTC)
        caller: Caller | None = None
        params: dict[str, Any] | None = None
        ctx: RequestContext | None = None
        result: dict[str, Any] | None = None
        error: KmsError | None = None
        try:
            body = await _read_body(receive)
            raw_path = scope.get("raw_path") or b"/"
            query = scope.get("query_string", b"").decode("latin-1")
            request = HttpRequest("POST", raw_path.decode("latin-1"), query, headers, body)
            caller = self.rt.authenticator.authenticate(
                request, now=now, source_ip=source_ip, user_agent=user_agent
            )
            if not target.startswith(TARGET_PREFIX):
                raise UnknownOperationException()
            codec = self.model.operation(operation)
            handler = HANDLERS.get(operation)
            if handler is None:
                raise UnsupportedOperationException(
                    f"{operation} is not supported by this server yet."
                )
            params = codec.decode(body)
            ctx = RequestContext(caller, request_id, grant_tokens=_grant_tokens(params))
            if operation in HOT_PATH:
                result = handler(self.rt.core, ctx, params)
            else:
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(self._pool, handler, self.rt.core, ctx, params)
            payload = codec.encode(result)
            status = 200
        except KmsError as exc:
            error = exc
        except Exception:
            log.exception("internal error in %s (request id %s)", operation, request_id)
            error = KMSInternalException(f"An internal error occurred. Request id: {request_id}")
        if error is not None:
            payload, status = encode_error(error), error.status
        event = build_event(
            event_time=now,
            event_name=operation or "Unknown",
            region=caller.region if caller else "",
            request_id=request_id,
            source_ip=source_ip,
            user_agent=user_agent,
            user_identity=caller_identity(caller),
            request_parameters=params,
            response_elements=result,
            resources=ctx.resources if ctx else [],
            error_code=error.code if error else None,
            error_message=error.message if error else None,
        )
        try:
            alone = found_idle and self._active == 1 and await self._still_alone()
            pending = self.rt.audit.commit(event, alone=alone)
            if pending is not None:
                await pending
        except Exception:
            log.exception("audit write failed (request id %s)", request_id)
            error = KMSInternalException(f"An internal error occurred. Request id: {request_id}")
            payload, status = encode_error(error), error.status
        extra = [(b"x-amzn-requestid", request_id.encode())]
        if error is not None:
            extra.append((b"x-amzn-errortype", error.code.encode()))
        await _reply(send, status, payload, JSON_TYPE, extra)

    async def _still_alone(self) -> bool:
        """Whether the one request in flight is still alone after a turn of the loop.

        A request that found the process idle and is alone when its audit event is ready
        writes (and syncs) the event itself, blocking the loop meanwhile: nothing would
        share the group commit and the loop has nothing else to do. Requests that arrived
        together are tasks that have not started yet, not counted in ``_active``: the turn
        lets them start. Requests that queue behind one another (a busy client on one
        connection, or several clients) arrive less than IDLE_GAP after the one before
        finished, so they keep handing their events to the sync thread, and one request's
        sync overlaps the next one's work.
        """
        await asyncio.sleep(0)
        return self._active == 1


def _grant_tokens(params: dict[str, Any]) -> tuple[str, ...]:
    """The request's GrantTokens (every operation that has the member), for the services."""
    return tuple(params.get("GrantTokens") or ())


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    if not message.get("more_body", False):  # the usual case: one message
        body: bytes = message.get("body", b"")
        if len(body) > MAX_BODY:
            raise SerializationException(f"The request body is larger than {MAX_BODY} bytes.")
        return body
    chunks: list[bytes] = [message.get("body", b"")]
    size = len(chunks[0])
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise SerializationException(f"The request body is larger than {MAX_BODY} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _reply(
    send: Send, status: int, body: bytes, content_type: bytes, extra: list[tuple[bytes, bytes]]
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
