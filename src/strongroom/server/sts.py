"""The STS endpoint: query-protocol requests (AssumeRole) signed for service ``sts``, on the
same port as KMS. Every request, failed ones included, gets a CloudTrail-shaped audit event
from ``sts.amazonaws.com`` before its reply."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from strongroom.audit.events import STS_EVENT_SOURCE, build_event, caller_identity
from strongroom.auth.sigv4 import HttpRequest
from strongroom.domain.errors import KmsError, KMSInternalException, UnknownOperationException
from strongroom.domain.models import Caller
from strongroom.domain.requestids import new_id
from strongroom.handlers.sts import HANDLERS
from strongroom.protocol.query import (
    STS_VERSION,
    decode_form,
    encode_error,
    encode_result,
    error_code,
)
from strongroom.server.wiring import Runtime
from strongroom.services.core import RequestContext

log = logging.getLogger("strongroom.server")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ReadBody = Callable[[Receive], Awaitable[bytes]]
Reply = Callable[[Send, int, bytes, bytes, list[tuple[bytes, bytes]]], Awaitable[None]]

XML_TYPE = b"text/xml"
# Members of a query request that address the operation, not its input.
_ENVELOPE = frozenset({"Action", "Version"})


class StsEndpoint:
    """Answers STS query requests with the app's runtime, thread pool and HTTP helpers."""

    def __init__(
        self, runtime: Runtime, pool: ThreadPoolExecutor, read_body: ReadBody, reply: Reply
    ) -> None:
        self.rt = runtime
        self._pool = pool
        self._read_body = read_body
        self._reply = reply

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = new_id()
        headers = [
            (k.decode("latin-1").lower(), v.decode("utf-8", "replace")) for k, v in scope["headers"]
        ]
        user_agent = next((v for k, v in headers if k == "user-agent"), "")
        source_ip = scope["client"][0] if scope.get("client") else "127.0.0.1"
        now = datetime.now(UTC)
        caller: Caller | None = None
        action = ""
        params: dict[str, str] | None = None
        ctx: RequestContext | None = None
        result: dict[str, Any] | None = None
        error: KmsError | None = None
        try:
            body = await self._read_body(receive)
            raw_path = scope.get("raw_path") or b"/"
            query = scope.get("query_string", b"").decode("latin-1")
            request = HttpRequest("POST", raw_path.decode("latin-1"), query, headers, body)
            caller = self.rt.authenticator.authenticate(
                request, now=now, source_ip=source_ip, user_agent=user_agent, service="sts"
            )
            form = decode_form(body)
            action = form.get("Action", "")
            handler = HANDLERS.get(action)
            if handler is None or form.get("Version") != STS_VERSION:
                raise UnknownOperationException(
                    f"Could not find operation {action} for version {form.get('Version')}"
                )
            params = {k: v for k, v in form.items() if k not in _ENVELOPE}
            ctx = RequestContext(caller, request_id)
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self._pool, handler, self.rt.core, ctx, params)
            payload, status = encode_result(action, result, request_id), 200
        except KmsError as exc:
            error = exc
        except Exception:
            log.exception("internal error in STS %s (request id %s)", action, request_id)
            error = KMSInternalException(f"An internal error occurred. Request id: {request_id}")
        if error is not None:
            payload, status = encode_error(error, request_id)
        event = build_event(
            event_time=now,
            event_name=action or "Unknown",
            region=caller.region if caller else "",
            request_id=request_id,
            source_ip=source_ip,
            user_agent=user_agent,
            user_identity=caller_identity(caller),
            request_parameters=params,
            response_elements=result,
            resources=ctx.resources if ctx else [],
            error_code=error_code(error)[0] if error else None,
            error_message=error.message if error else None,
            event_source=STS_EVENT_SOURCE,
        )
        try:
            await self.rt.audit.submit(event)
        except Exception:
            log.exception("audit write failed (request id %s)", request_id)
            error = KMSInternalException(f"An internal error occurred. Request id: {request_id}")
            payload, status = encode_error(error, request_id)
        await self._reply(
            send, status, payload, XML_TYPE, [(b"x-amzn-requestid", request_id.encode())]
        )
