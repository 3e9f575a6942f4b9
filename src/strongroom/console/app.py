"""The web console at ``/console``: sign-in, sessions, CSRF checks and the pages' routes.

Every page and action is made of API calls signed as the signed-in principal and answered
by the server's pipeline (``console.api``): the console can do nothing the principal could
not do with the AWS CLI, and each call is in the audit trail as that principal's.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import jinja2

from strongroom.console import actions, pages
from strongroom.console.api import SIGNED_OUT, Api, ApiError, Asgi, Caller, SecretSource
from strongroom.console.chart import use_chart
from strongroom.console.http import (
    PREFIX,
    SECURITY_HEADERS,
    Headers,
    Receive,
    Reply,
    Request,
    Scope,
    Send,
    is_console_path,
    read_body,
    redirect,
    static_asset,
)
from strongroom.console.sessions import (
    COOKIE,
    Session,
    SessionCodec,
    SignedOut,
    SignInLimiter,
    Wrapper,
    load_session_key,
)
from strongroom.console.trail import EventFilter, Trail, Viewer, caller_of, hourly_counts

__all__ = ["Console", "is_console_path"]  # what the server imports

log = logging.getLogger("strongroom.console")

FLASH = "strongroom_console_flash"
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}")
CSRF_REFUSED = (
    b"Refused: the form's CSRF token is missing or wrong, or the form came from another site."
)
BAD_CREDENTIALS = "The access key ID or secret access key is not correct."


class ConsoleSettings(Protocol):
    """What the console reads of the server's settings (``server.settings.Settings``)."""

    @property
    def data_dir(self) -> Path: ...

    @property
    def audit_path(self) -> Path: ...

    @property
    def console_idle_seconds(self) -> float: ...

    @property
    def console_session_seconds(self) -> float: ...


class Console:
    """The console of one server process."""

    def __init__(
        self,
        *,
        kms: Asgi,
        sts: Asgi,
        secrets: SecretSource,
        root_key: Callable[[], Wrapper],
        settings: ConsoleSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api = Api(kms, sts, secrets)
        self._root_key = root_key
        self._settings = settings
        self._clock = clock
        self._codec: SessionCodec | None = None
        self.limiter = SignInLimiter(clock=clock)
        self.signed_out = SignedOut(settings.data_dir)
        self.trail = Trail(settings.audit_path)
        self._templates = jinja2.Environment(
            loader=jinja2.PackageLoader("strongroom.console", "templates"),
            autoescape=True,
            undefined=jinja2.ChainableUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._templates.filters["pretty"] = lambda value: json.dumps(value, indent=2, default=str)
        self._templates.filters["caller"] = caller_of
        self._templates.filters["when"] = _when

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await read_body(receive)
            request = Request(scope, body)
            status, payload, headers = await self._route(request)
        except Reply as reply:
            status, payload, headers = reply.status, reply.body, reply.headers
        except ApiError as exc:
            status, payload = exc.status, f"{exc.code}: {exc.message}".encode()
            headers = [(b"content-type", b"text/plain; charset=utf-8")]
        except Exception:  # the details go to the log, never to the page
            log.exception("console: internal error on %s", scope.get("path"))
            status, payload = 500, b"An internal error occurred; the server log has the details."
            headers = [(b"content-type", b"text/plain; charset=utf-8")]
        content_type = b"text/html; charset=utf-8"
        for name, value in headers:
            if name == b"content-type":
                content_type = value
        extra = [h for h in headers if h[0] != b"content-type"]
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(payload)).encode()),
                    (b"cache-control", b"no-store"),
                    *SECURITY_HEADERS,
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    # -- sessions ------------------------------------------------------------------------

    async def codec(self) -> SessionCodec:
        if self._codec is None:
            loop = asyncio.get_running_loop()
            key = await loop.run_in_executor(
                None, load_session_key, self._settings.data_dir, self._root_key()
            )
            self._codec = SessionCodec(
                key,
                idle=self._settings.console_idle_seconds,
                lifetime=self._settings.console_session_seconds,
            )
        return self._codec

    def _cookie(
        self, request: Request, value: str, *, name: str = COOKIE, max_age: int | None = None
    ) -> tuple[bytes, bytes]:
        parts = [f"{name}={value}", f"Path={PREFIX}", "HttpOnly", "SameSite=Strict"]
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        if request.secure:
            parts.append("Secure")
        return (b"set-cookie", "; ".join(parts).encode())

    async def _session(self, request: Request) -> Session | None:
        value = request.cookies.get(COOKIE)
        if not value:
            return None
        now = self._clock()
        session = (await self.codec()).decode(value, now)
        if session is None or self.signed_out.contains(session.session_id, now):
            return None  # a copy of a signed-out cookie is no session either
        return session

    def _signed_out(self, request: Request, message: str) -> Reply:
        return redirect(
            f"{PREFIX}/sign-in",
            [self._cookie(request, "", max_age=0), self._flash(request, "error", message)],
        )

    def _flash(self, request: Request, kind: str, text: str) -> tuple[bytes, bytes]:
        value = base64.urlsafe_b64encode(json.dumps([kind, text[:2000]]).encode()).decode()
        return self._cookie(request, value.rstrip("="), name=FLASH)

    # -- routing -------------------------------------------------------------------------

    async def _route(self, request: Request) -> tuple[int, bytes, Headers]:
        path, method = request.path, request.method
        if method == "GET" and path.startswith("/static/"):
            return static_asset(path.removeprefix("/static/"))
        if path == "/sign-in":
            if method == "POST":
                return await self._sign_in(request)
            return self._page(request, None, "sign_in.html", {}, status=200)
        session = await self._session(request)
        if session is None:
            if method == "POST":  # nothing is done: sign in again, then do it again
                raise self._signed_out(request, "Your session has ended: sign in again.")
            raise (
                self._signed_out(request, "Sign in to use the console.")
                if request.cookies.get(COOKIE)
                else redirect(f"{PREFIX}/sign-in")
            )
        codec = await self.codec()
        extra: Headers = []
        if (fresh := codec.touched(session, self._clock())) is not None:
            session = fresh
            extra.append(self._cookie(request, codec.encode(session)))
        caller = Caller(
            session.access_key_id,
            session.region,
            request.client,
            request.headers.get("user-agent", ""),
        )
        if method == "POST" and not (
            request.same_origin() and codec.csrf_ok(session, _csrf_of(request))
        ):
            raise Reply(403, CSRF_REFUSED, [(b"content-type", b"text/plain")])
        try:
            status, body, headers = await self._dispatch(request, session, caller)
        except ApiError as exc:
            if exc.code in SIGNED_OUT:
                raise self._signed_out(
                    request, "Your session ended: the access key is no longer valid."
                ) from None
            raise
        except Reply as reply:
            reply.headers += extra
            raise
        return status, body, headers + extra

    async def _dispatch(
        self, request: Request, session: Session, caller: Caller
    ) -> tuple[int, bytes, Headers]:
        path, method = request.path, request.method
        if method == "POST" and path == "/sign-out":
            until = session.issued + (await self.codec()).lifetime
            await asyncio.get_running_loop().run_in_executor(
                None, self.signed_out.add, session.session_id, until, self._clock()
            )
            raise redirect(
                f"{PREFIX}/sign-in",
                [self._cookie(request, "", max_age=0), self._flash(request, "ok", "Signed out.")],
            )
        if method == "GET" and path in ("/", ""):
            raise redirect(f"{PREFIX}/keys")
        if path == "/keys" and method == "GET":
            return await self._keys(request, session, caller)
        if path == "/keys/new" and method == "GET":
            await self._still_signed_in(session, caller)
            return self._page(
                request, session, "create_key.html", {"specs": pages.creatable_specs()}
            )
        if path == "/keys" and method == "POST":
            return await self._create_key(request, caller)
        if path == "/aliases" and method == "GET":
            return await self._aliases(request, session, caller)
        if path == "/aliases/delete" and method == "POST":
            return await self._act(
                request, caller, actions.delete_alias(request.form), f"{PREFIX}/aliases"
            )
        if path == "/key-stores" and method == "GET":
            return await self._key_stores(request, session, caller)
        if path == "/audit" and method == "GET":
            await self._still_signed_in(session, caller)
            return await self._audit(request, session)
        match = re.fullmatch(r"/keys/([^/]+)(?:/([a-z-]+))?", path)
        if match:
            key_id = urllib.parse.unquote(match.group(1))
            if method == "GET" and match.group(2) is None:
                return await self._key(request, session, caller, key_id)
            if method == "POST" and (build := actions.KEY_ACTIONS.get(match.group(2) or "")):
                back = f"{PREFIX}/keys/{urllib.parse.quote(key_id, safe='')}"
                try:
                    action = build(key_id, request.form)
                except actions.FormError as exc:
                    raise redirect(back, [self._flash(request, "error", str(exc))]) from None
                return await self._act(request, caller, action, back)
        return self._page(request, session, "not_found.html", {}, status=404)

    async def _still_signed_in(self, session: Session, caller: Caller) -> None:
        """Raise ApiError (which ends the session) unless the session's access key still
        stands for the principal that signed in. Pages that make no KMS call need this:
        the audit pages would otherwise show the trail to a deleted key's cookie."""
        arn = await self.api.current_arn(caller)
        if arn != session.arn:
            raise ApiError("InvalidClientTokenId", "The access key now has another owner.", 403)

    # -- sign-in -------------------------------------------------------------------------

    async def _sign_in(self, request: Request) -> tuple[int, bytes, Headers]:
        if not request.same_origin():
            raise Reply(
                403,
                b"Refused: the sign-in form came from another site.",
                [(b"content-type", b"text/plain")],
            )
        access_key_id = actions._one(request.form, "AccessKeyId")[:128]
        secret = (request.form.get("SecretAccessKey") or [""])[0][:128]
        region = actions._one(request.form, "Region", "us-east-1")
        values = {"access_key_id": access_key_id, "region": region}
        if not _REGION.fullmatch(region):
            return self._page(
                request,
                None,
                "sign_in.html",
                {**values, "error": f"Region {region!r} is not a region name, such as us-east-1."},
                status=400,
            )
        wait = self.limiter.retry_after(f"ip:{request.address}", f"key:{access_key_id}")
        if wait > 0:
            message = f"Too many failed sign-ins. Try again in {int(wait) + 1} seconds."
            return self._page(
                request, None, "sign_in.html", {**values, "error": message}, status=429
            )
        caller = Caller(
            access_key_id, region, request.client, request.headers.get("user-agent", "")
        )
        try:
            if not access_key_id or not secret:
                raise ApiError("IncompleteSignature", "", 400)
            arn = await self.api.who_am_i(caller, secret)
        except ApiError:
            self.limiter.failed(f"ip:{request.address}", f"key:{access_key_id}")
            return self._page(
                request, None, "sign_in.html", {**values, "error": BAD_CREDENTIALS}, status=401
            )
        codec = await self.codec()
        session = codec.new(access_key_id, arn, region, self._clock())
        raise redirect(
            f"{PREFIX}/keys",
            [
                self._cookie(request, codec.encode(session)),
                self._cookie(request, "", name=FLASH, max_age=0),
            ],
        )

    # -- pages ---------------------------------------------------------------------------

    async def _keys(
        self, request: Request, session: Session, caller: Caller
    ) -> tuple[int, bytes, Headers]:
        where = pages.KeyFilter.from_query(request.query)
        try:
            listing = await pages.key_rows(self.api, caller, where)
            error = None
        except ApiError as exc:
            if exc.code in SIGNED_OUT:
                raise
            listing, error = pages.KeyList([], 0, 0), exc
        context = {
            "rows": listing.rows,
            "listing": listing,
            "where": where,
            "choices": pages.CHOICES,
            "error": error,
            "query": request.query,
            "sort_href": lambda name: where.sort_query(request.query, name),
        }
        return self._page(request, session, "keys.html", context)

    async def _key(
        self, request: Request, session: Session, caller: Caller, key_id: str
    ) -> tuple[int, bytes, Headers]:
        await asyncio.get_running_loop().run_in_executor(None, self.trail.refresh)
        try:
            data = await pages.key_page(self.api, caller, key_id)
        except ApiError as exc:
            if exc.code in SIGNED_OUT:
                raise
            return self._page(
                request,
                session,
                "key_refused.html",
                {"key_id": key_id, "error": exc},
                status=exc.status,
            )
        viewer = Viewer(session.arn, _account_of(session.arn))
        arn = data["metadata"]["Arn"]
        events = self.trail.visible(viewer, EventFilter(resource=arn), limit=100_000)
        chart = use_chart(hourly_counts(events, datetime.now(UTC)))
        context = {
            **data,
            "events": events[:20],
            "chart": chart,
            "specs": pages.creatable_specs(),
            "grant_operations": GRANT_OPERATIONS,
        }
        return self._page(request, session, "key.html", context)

    async def _aliases(
        self, request: Request, session: Session, caller: Caller
    ) -> tuple[int, bytes, Headers]:
        result = await pages.part(self.api.pages(caller, "ListAliases", "Aliases"))
        if result.error and result.error.code in SIGNED_OUT:
            raise result.error
        return self._page(request, session, "aliases.html", {"aliases": result})

    async def _key_stores(
        self, request: Request, session: Session, caller: Caller
    ) -> tuple[int, bytes, Headers]:
        result = await pages.part(
            self.api.pages(caller, "DescribeCustomKeyStores", "CustomKeyStores")
        )
        if result.error and result.error.code in SIGNED_OUT:
            raise result.error
        return self._page(request, session, "key_stores.html", {"stores": result})

    async def _audit(self, request: Request, session: Session) -> tuple[int, bytes, Headers]:
        await asyncio.get_running_loop().run_in_executor(None, self.trail.refresh)
        q = request.query
        where = EventFilter(
            event_name=q.get("name", "").strip(),
            principal=q.get("principal", "").strip(),
            resource=q.get("resource", "").strip(),
            source=q.get("source", "").strip(),
            errors_only=q.get("errors") == "on",
            since=q.get("since", "").strip(),
            until=q.get("until", "").strip(),
        )
        limit = int(q["limit"]) if q.get("limit", "").isdigit() else 100
        viewer = Viewer(session.arn, _account_of(session.arn))
        events = self.trail.visible(viewer, where, min(max(limit, 1), 1000))
        context = {"events": events, "query": q, "viewer": viewer}
        return self._page(request, session, "audit.html", context)

    # -- actions -------------------------------------------------------------------------

    async def _create_key(self, request: Request, caller: Caller) -> tuple[int, bytes, Headers]:
        try:
            action = actions.create_key(request.form)
        except actions.FormError as exc:
            raise redirect(
                f"{PREFIX}/keys/new", [self._flash(request, "error", str(exc))]
            ) from None
        try:
            result = await self.api.call(caller, action.operation, action.params)
        except ApiError as exc:
            if exc.code in SIGNED_OUT:
                raise
            raise redirect(
                f"{PREFIX}/keys/new", [self._flash(request, "error", f"{exc.code}: {exc.message}")]
            ) from None
        key_id = result["KeyMetadata"]["KeyId"]
        raise redirect(
            f"{PREFIX}/keys/{key_id}", [self._flash(request, "ok", f"{action.done} {key_id}")]
        )

    async def _act(
        self, request: Request, caller: Caller, action: actions.Request, back: str
    ) -> tuple[int, bytes, Headers]:
        """Make ``action``'s call and go back to ``back`` saying how it went. A fetch
        (Accept: application/json) gets the outcome as JSON instead."""
        wants_json = "application/json" in request.headers.get("accept", "")
        try:
            await self.api.call(caller, action.operation, action.params)
        except ApiError as exc:
            if exc.code in SIGNED_OUT:
                raise
            if wants_json:
                raise Reply(
                    exc.status,
                    json.dumps({"error": exc.code, "message": exc.message}).encode(),
                    [(b"content-type", b"application/json")],
                ) from None
            raise redirect(
                back, [self._flash(request, "error", f"{exc.code}: {exc.message}")]
            ) from None
        if wants_json:
            raise Reply(
                200,
                json.dumps({"done": action.done}).encode(),
                [(b"content-type", b"application/json")],
            )
        raise redirect(back, [self._flash(request, "ok", action.done)])

    # -- rendering -----------------------------------------------------------------------

    def _page(
        self,
        request: Request,
        session: Session | None,
        template: str,
        context: Mapping[str, Any],
        *,
        status: int = 200,
    ) -> tuple[int, bytes, Headers]:
        headers: Headers = []
        flash = None
        if FLASH in request.cookies:
            flash = _read_flash(request.cookies[FLASH])
            headers.append(self._cookie(request, "", name=FLASH, max_age=0))
        csrf = self._codec.csrf_token(session) if session is not None and self._codec else ""
        values = {
            "session": session,
            "csrf": csrf,
            "flash": flash,
            "path": request.path,
            "error": None,
            "access_key_id": "",
            "region": "us-east-1",
            **context,
        }
        body = self._templates.get_template(template).render(values).encode()
        return status, body, headers


GRANT_OPERATIONS = (
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "Sign",
    "Verify",
    "GetPublicKey",
    "CreateGrant",
    "RetireGrant",
    "DescribeKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
    "Decapsulate",
)


def _csrf_of(request: Request) -> str | None:
    token = request.headers.get("x-csrf-token")
    if token:
        return token
    values = request.form.get("csrf")
    return str(values[0]) if values else None


def _read_flash(value: str) -> tuple[str, str] | None:
    try:
        kind, text = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (ValueError, TypeError, RecursionError):  # not a flash this console set
        return None
    return (str(kind), str(text))


def _account_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 else ""


def _when(value: Any) -> str:
    """A CreationDate (epoch seconds on the wire) or an ISO time, as UTC text."""
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)
