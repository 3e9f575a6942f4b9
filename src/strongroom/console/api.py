"""The console's only way to act: an API request signed with the signed-in access key and
answered by the server's own request pipeline, exactly as a request from the AWS CLI is
(authentication, authorization, quotas, the handler, the audit event before the reply).

The console holds no key material and calls no service itself: what a page shows and what
a form does is what the principal's KMS calls return.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

Message = MutableMapping[str, Any]
Asgi = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[Message]],
        Callable[[Message], Awaitable[None]],
    ],
    Awaitable[None],
]
_HOST = "console.strongroom.internal"  # signed and checked like any Host header
USER_AGENT = "strongroom-console"
# Errors that say the credentials no longer stand (the access key was deleted): the session ends.
SIGNED_OUT = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignature",
        "SignatureDoesNotMatch",
        "InvalidClientTokenId",
        "ExpiredTokenException",
    }
)


class SecretSource(Protocol):
    """Finds an access key's secret (``services.identities.CredentialResolver``)."""

    def resolve(self, access_key_id: str) -> Any: ...


class ApiError(Exception):
    """An error reply of the API: its AWS error code and message."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a console request acts as, and where it came from."""

    access_key_id: str
    region: str
    client: tuple[str, int] | None  # the browser's address: the event's sourceIPAddress
    browser: str  # the browser's User-Agent


def user_agent(browser: str) -> str:
    """The userAgent of the console's events: says console, then the browser's."""
    return f"{USER_AGENT} ({browser[:200]})" if browser else USER_AGENT


def signed_headers(
    *,
    service: str,
    region: str,
    access_key_id: str,
    secret: str,
    body: bytes,
    content_type: str,
    agent: str,
    target: str | None = None,
) -> list[tuple[bytes, bytes]]:
    """SigV4 headers of a POST of ``body`` to ``/`` (botocore's signer, as SDKs sign)."""
    headers = {"Host": _HOST, "Content-Type": content_type, "User-Agent": agent}
    if target:
        headers["X-Amz-Target"] = target
    request = AWSRequest(method="POST", url=f"http://{_HOST}/", data=body, headers=headers)
    SigV4Auth(Credentials(access_key_id, secret), service, region).add_auth(request)
    return [(k.lower().encode(), str(v).encode()) for k, v in request.headers.items()]


async def run(
    app: Asgi, headers: list[tuple[bytes, bytes]], body: bytes, client: Any
) -> tuple[int, bytes]:
    """Run one POST through ASGI ``app`` in this task; its status and body."""
    scope: dict[str, Any] = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": headers,
        "client": client,
    }
    sent = False
    status = 500
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


class Api:
    """KMS and STS calls as a signed-in principal, through the server's pipeline."""

    def __init__(self, kms: Asgi, sts: Asgi, secrets: SecretSource) -> None:
        self._kms = kms
        self._sts = sts
        self._secrets = secrets

    async def call(
        self, caller: Caller, operation: str, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The result of KMS ``operation``; raises ApiError with the API's error."""
        credential = self._secrets.resolve(caller.access_key_id)
        # No credential: the key is gone (or this is --dev, which takes any signature); the
        # pipeline answers as it would answer the CLI.
        secret = credential.secret_access_key if credential is not None else "-"
        body = json.dumps(params or {}).encode()
        headers = signed_headers(
            service="kms",
            region=caller.region,
            access_key_id=caller.access_key_id,
            secret=secret,
            body=body,
            content_type="application/x-amz-json-1.1",
            agent=user_agent(caller.browser),
            target=f"TrentService.{operation}",
        )
        status, reply = await run(self._kms, headers, body, caller.client)
        document = json.loads(reply) if reply else {}
        if status != 200:
            code = str(document.get("__type", "KMSInternalException")).rsplit("#", 1)[-1]
            message = str(document.get("message") or document.get("Message") or "")
            raise ApiError(code, message, status)
        assert isinstance(document, dict)
        return document

    async def pages(
        self, caller: Caller, operation: str, member: str, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Every item of list ``member`` over all pages of ``operation`` (Marker/NextMarker)."""
        items: list[dict[str, Any]] = []
        request = dict(params or {})
        for _ in range(1000):
            page = await self.call(caller, operation, request)
            items += page.get(member, [])
            if not page.get("Truncated") or not page.get("NextMarker"):
                break
            request["Marker"] = page["NextMarker"]
        return items

    async def current_arn(self, caller: Caller) -> str:
        """The ARN the signed-in access key stands for now: GetCallerIdentity signed with
        its current secret, as ``call`` signs; ApiError (a SIGNED_OUT code) when the key is
        gone. For pages that make no KMS call, which must not outlive the key either."""
        credential = self._secrets.resolve(caller.access_key_id)
        secret = credential.secret_access_key if credential is not None else "-"
        return await self.who_am_i(caller, secret)

    async def who_am_i(self, caller: Caller, secret: str) -> str:
        """STS GetCallerIdentity signed with ``secret``: the caller's ARN, or ApiError. This
        is how sign-in checks credentials: as the server checks any signed request."""
        body = b"Action=GetCallerIdentity&Version=2011-06-15"
        headers = signed_headers(
            service="sts",
            region=caller.region,
            access_key_id=caller.access_key_id,
            secret=secret,
            body=body,
            content_type="application/x-www-form-urlencoded; charset=utf-8",
            agent=user_agent(caller.browser),
        )
        status, reply = await run(self._sts, headers, body, caller.client)
        root = ET.fromstring(reply)
        if status != 200:
            code = _text(root, "Code") or "AccessDenied"
            raise ApiError(code, _text(root, "Message"), status)
        return _text(root, "Arn")


def _text(root: ET.Element, tag: str) -> str:
    for element in root.iter():
        if element.tag == tag or element.tag.endswith("}" + tag):
            return element.text or ""
    return ""
