"""The one request pipeline of every API protocol: read, authenticate, decode, dispatch,
audit, reply. Errors are mapped to the wire here and only here."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from strongroom.audit.events import build_event, build_intent, caller_identity
from strongroom.auth.sigv4 import HttpRequest
from strongroom.domain.errors import KmsError, KMSInternalException
from strongroom.domain.lru import LruDict
from strongroom.domain.models import Caller
from strongroom.domain.requestids import new_id
from strongroom.keystores.base import CURRENT_CALL, CallOrigin, MustLeaveLoop
from strongroom.keystores.loop_bridge import run_bridged
from strongroom.server.access_log import enable_access_log, log_request
from strongroom.server.asgi import Receive, Scope, Send, read_body, reply
from strongroom.server.logs import REQUEST_ID
from strongroom.server.metrics import Metrics
from strongroom.server.protocols import Handler, WireProtocol
from strongroom.server.wiring import Runtime
from strongroom.services.core import Core, RequestContext
from strongroom.services.key_usage import note_service_uses, note_use

log = logging.getLogger("strongroom.server")

LEFT_LOOP_HINTS = 4096  # (operation, KeyId) pairs remembered as leaving the loop
IDLE_GAP = 100e-6  # seconds idle before a request that counts as finding the process idle


class Pipeline:
    """Answers the API requests of one process. Every request gets a request id and an
    audit event, committed before its reply, failed requests included; an audit failure
    turns the reply into KMSInternalException. Routes marked ``on_loop`` run their handler
    on the event loop, the others in the thread pool; of these, a route that changes state
    (``intent``) first makes the request's intent durable in the trail, and refuses, changing
    nothing, when it cannot (``_record_intent``). With the access log on, each request
    is logged once replied to. A handler on the loop whose key store must wait on the
    network (MustLeaveLoop) runs again on the loop's bridge (``keystores.loop_bridge``),
    which awaits the network without blocking the loop."""

    def __init__(
        self,
        runtime: Runtime,
        pool: ThreadPoolExecutor,
        *,
        metrics: Metrics,
        catch_up: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Every request is counted in ``metrics``. ``catch_up`` (strict consistency) is
        awaited before each request is read: the change feed is read after the request
        arrived (``Jobs.catch_up``)."""
        self.rt = runtime
        self._pool = pool
        self._metrics = metrics
        self._catch_up = catch_up
        self._active = 0  # requests in flight that count for idleness
        self._idle_since = 0.0  # time.monotonic() when the last of them finished
        self._access_log = enable_access_log(runtime.settings)
        # (operation, KeyId) pairs whose handler had to wait (MustLeaveLoop): the next
        # such request goes onto the loop's bridge at once instead of running up to the key
        # store first (~20-30 µs of CPU wasted per XKS request). Only a hint: a pair whose
        # key no longer needs the network is served correctly on the bridge too.
        self._left: LruDict[tuple[str, str], bool] = LruDict(LEFT_LOOP_HINTS)

    async def __call__(
        self, wire: WireProtocol, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Answer one POST request of protocol ``wire``."""
        started = time.perf_counter()
        counted = wire.counts_for_idle
        found_idle = False
        if counted:
            self._active += 1
            found_idle = self._active == 1 and time.monotonic() - self._idle_since > IDLE_GAP
        try:
            request_id = new_id()
            REQUEST_ID.set(request_id)  # this request's task: its log lines name it
            # ASGI header names are lower-case (the specification requires it). A repeated
            # name: its last value, as SigV4 reads it.
            raw_headers = scope["headers"]
            try:  # ASCII names and UTF-8 values (every SDK's): decoded alike, a third cheaper
                fields = {k.decode("ascii"): v.decode() for k, v in raw_headers}
            except UnicodeDecodeError:  # names as Latin-1, undecodable bytes replaced
                fields = {k.decode("latin-1"): v.decode("utf-8", "replace") for k, v in raw_headers}
            headers: Collection[tuple[str, str]]
            distinct: dict[str, str] | None
            if len(fields) == len(raw_headers):  # every name once, as SDKs send them
                headers, distinct = fields.items(), fields  # SigV4 reads the dict
            else:
                headers = [
                    (k.decode("latin-1"), v.decode("utf-8", "replace")) for k, v in raw_headers
                ]
                distinct = None
            user_agent = fields.get("user-agent", "")
            operation = wire.header_operation(fields)
            source_ip = scope["client"][0] if scope.get("client") else "127.0.0.1"
            now = datetime.now(UTC)
            caller: Caller | None = None
            params: dict[str, Any] | None = None
            ctx: RequestContext | None = None
            result: dict[str, Any] | None = None
            error: KmsError | None = None
            try:
                if self._catch_up is not None:
                    await self._catch_up()
                body = await read_body(receive)
                raw_path = scope.get("raw_path") or b"/"
                query = scope.get("query_string", b"").decode("latin-1")
                request = HttpRequest(
                    "POST", raw_path.decode("latin-1"), query, headers, body, distinct
                )
                caller = self.rt.authenticator.authenticate(
                    request,
                    now=now,
                    source_ip=source_ip,
                    user_agent=user_agent,
                    service=wire.signing_name,
                )
                if not operation:
                    operation = wire.body_operation(body)
                route, params = wire.decode(operation, fields, body)
                if self.rt.faults.faults:  # strongroom admin fault (server/faults.py)
                    await self.rt.faults.inject(
                        wire.signing_name, caller.principal.account, operation
                    )
                ctx = RequestContext(caller, request_id, grant_tokens=_grant_tokens(params))
                quotas = self.rt.quotas  # request quotas: ThrottlingException over a rate
                if quotas and (waiting := quotas.admit(caller, operation, params)) is not None:
                    await waiting
                call = CallOrigin(request_id, operation, caller)
                key_id = params.get("KeyId")
                core = self.rt.core
                if not route.on_loop:
                    if route.intent:
                        await self._record_intent(
                            wire, operation, ctx, params, now, source_ip, user_agent
                        )
                    result = await self._in_pool(call, route.handler, ctx, params)
                elif self._left and isinstance(key_id, str) and (operation, key_id) in self._left:
                    result = await run_bridged(_serve, call, route.handler, core, ctx, params)
                else:
                    try:
                        result = _serve_here(call, route.handler, core, ctx, params)
                    except MustLeaveLoop:
                        # The key's store waits on the network: run it all again where it
                        # may wait, with a fresh context (nothing was written or sent).
                        self._note_left(operation, key_id)
                        ctx = RequestContext(caller, request_id, grant_tokens=ctx.grant_tokens)
                        result = await run_bridged(_serve, call, route.handler, core, ctx, params)
                payload = route.encode(result, request_id)
                status = 200
            except KmsError as exc:
                error = exc
            except Exception:
                log.exception(
                    "internal error in %s %s (request id %s)", wire.name, operation, request_id
                )
                error = _internal(request_id)
            extra = [(b"x-amzn-requestid", request_id.encode())]
            if error is not None:
                payload, status, error_headers = wire.encode_error(error, request_id)
                extra += error_headers
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
                error_code=wire.error_code(error) if error else None,
                error_message=error.message if error else None,
                event_source=wire.event_source,
                event_id=ctx.event_id if ctx else None,
                fault_injected=error is not None and error.injected,
            )
            try:
                for service_event in ctx.service_events if ctx else ():  # SSM's KMS calls
                    await self.rt.audit.submit(service_event)
                if ctx is not None and ctx.service_uses:  # ...and the keys they used
                    note_service_uses(self.rt.core, ctx)
                alone = found_idle and self._active == 1 and await self._still_alone()
                pending = self.rt.audit.commit(event, alone=alone)
                if pending is not None:
                    await pending
            except Exception:
                log.exception("audit write failed (request id %s)", request_id)
                error = _internal(request_id)
                payload, status, error_headers = wire.encode_error(error, request_id)
                extra = [(b"x-amzn-requestid", request_id.encode()), *error_headers]
            if error is None and ctx is not None:  # the key's last use (GetKeyLastUsage)
                note_use(self.rt.core, ctx, operation, now)
            await reply(send, status, payload, wire.content_type, extra)
            code = wire.error_code(error) if error else None
            self._metrics.observe(operation or "Unknown", code, time.perf_counter() - started)
            if self._access_log:
                client = scope.get("client")
                log_request(client, wire.signing_name, operation, status, code, started, request_id)
        finally:
            if counted:
                self._active -= 1
                if not self._active:
                    self._idle_since = time.monotonic()

    def _note_left(self, operation: str, key_id: object) -> None:
        if not isinstance(key_id, str):  # no KeyId (Decrypt without one): nothing to key on
            return
        self._left.keep((operation, key_id), True)  # the least recently noted go first

    async def _in_pool(
        self, call: CallOrigin, handler: Handler, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        """Run ``handler`` in the thread pool (``_serve``)."""
        loop = asyncio.get_running_loop()
        core = self.rt.core
        return await loop.run_in_executor(self._pool, _serve, call, handler, core, ctx, params)

    async def _record_intent(
        self,
        wire: WireProtocol,
        operation: str,
        ctx: RequestContext,
        params: dict[str, Any],
        now: datetime,
        source_ip: str,
        user_agent: str,
    ) -> None:
        """Make the intent of a request that changes state durable in the audit trail,
        before its handler runs (``audit/events.py``, ``build_intent``): its request id,
        principal, operation and parameters, redacted as its event's are.

        Raises KMSInternalException when the trail cannot take it: the request is refused
        and nothing is changed (its event then records the refusal, if the trail takes
        that). Without this, a change whose event could not be written would be made and
        go unrecorded while its caller was told it failed.

        The intent does not make the change and its event one atomic write: when the intent
        is written but the event, after the handler, cannot be, the change stands, its
        caller gets KMSInternalException, and the trail holds the intent alone, which says
        the request was attempted (by whom, with what) and may have been made; ``audit
        events --intents`` shows it. One more durable write (a group commit, shared with
        other requests in flight) per request that changes state; those run in the pool,
        off the hot path, whose operations change nothing and write no intent (the key's
        last use, ``note_use``, is a note, not a change)."""
        record = build_intent(
            event_time=now,
            event_name=operation,
            region=ctx.region,
            request_id=ctx.request_id,
            source_ip=source_ip,
            user_agent=user_agent,
            user_identity=caller_identity(ctx.caller),
            request_parameters=params,
            event_source=wire.event_source,
        )
        try:
            await self.rt.audit.submit(record)
        except Exception:
            log.exception("audit intent write failed: request %s refused", ctx.request_id)
            raise _internal(ctx.request_id) from None

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


def _serve(
    call: CallOrigin, handler: Handler, core: Core, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    """Run ``handler`` with ``call`` as the request its key stores work for
    (``keystores.base.CURRENT_CALL``), on whichever thread runs it."""
    token = CURRENT_CALL.set(call)
    logged = REQUEST_ID.set(call.request_id)  # a pool thread's context is not the task's
    try:
        return handler(core, ctx, params)
    finally:
        REQUEST_ID.reset(logged)
        CURRENT_CALL.reset(token)


def _serve_here(
    call: CallOrigin, handler: Handler, core: Core, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    """``_serve`` in the request's own task, on the loop: its log lines already name the
    request (REQUEST_ID is set in the task's context), only the key stores' call is set."""
    token = CURRENT_CALL.set(call)
    try:
        return handler(core, ctx, params)
    finally:
        CURRENT_CALL.reset(token)


def _internal(request_id: str) -> KMSInternalException:
    """What the caller learns of an unexpected failure: its request id (details go to the log)."""
    return KMSInternalException(f"An internal error occurred. Request id: {request_id}")


def _grant_tokens(params: dict[str, Any]) -> tuple[str, ...]:
    """The request's GrantTokens (every KMS operation that has the member), for the services."""
    return tuple(params.get("GrantTokens") or ())
