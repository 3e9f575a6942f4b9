"""The floor of a faithful Encrypt in Python: an ASGI app that does only what any KMS that
verifies SigV4, encrypts under a key and makes an audit event durable before it answers
must do for a signed Encrypt, with Strongroom's own code for each of those steps, and
nothing else.

Not part of Strongroom, and not a KMS: ``kms_bench.py --only floor`` runs it (under the same
uvicorn + uvloop + httptools and worker count as the bare stack and Strongroom) to show how
much of the stack's ceiling is left once the essential work is done. Per request it:

* reads the body and decodes the headers into the dict SigV4 reads (as the pipeline does);
* verifies SigV4 with ``strongroom.auth.sigv4`` (``parse_authorization`` with its cache of
  parsed heads, ``verify`` with its cache of signing keys: the canonical request, the
  payload's SHA-256, the string to sign, the HMAC and the constant-time comparison);
* parses the JSON body and the base64 plaintext;
* seals the plaintext with ``strongroom.crypto.blob.seal`` (a fresh nonce, AES-256-GCM)
  under an in-memory key for the KeyId;
* commits an audit event (its identity, request parameters, resources and times, in the
  shape Strongroom writes) to ``strongroom.audit.log.AuditLog``: the hash chain, the group
  commit, the writer thread's ``fdatasync`` (``FLOOR_AUDIT_FSYNC=off`` skips the sync), and
  waits for it to be durable;
* answers the Encrypt response with a request id.

What it leaves out is everything else a KMS must do per request: the caller's identity
(credentials from a store, session tokens), request validation against the service model,
the key's record (resolution by id, ARN or alias, its state, its store), authorization
(key policy, identity policies, grants), request quotas, key-usage tracking, metrics, the
error replies. So Strongroom's share of the ceiling can only be lower than this app's.

Environment: ``FLOOR_ACCESS_KEY`` / ``FLOOR_SECRET_KEY`` (the one credential it accepts),
``FLOOR_ACCOUNT`` (12 digits), ``FLOOR_AUDIT_DIR`` (each worker writes its own segments
there), ``FLOOR_AUDIT_FSYNC`` (on|off, default on).
"""

from __future__ import annotations

import base64
import binascii
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.audit.log import AuditLog
from strongroom.auth.sigv4 import (
    HeaderCache,
    HttpRequest,
    SigningKeyCache,
    parse_authorization,
    verify,
)
from strongroom.crypto.blob import seal
from strongroom.domain.errors import KmsError, UnrecognizedClientException, ValidationException

ACCESS_KEY = os.environ.get("FLOOR_ACCESS_KEY", "AKIAIOSFODNN7EXAMPLE")
SECRET_KEY = os.environ.get("FLOOR_SECRET_KEY", "floor")
ACCOUNT = os.environ.get("FLOOR_ACCOUNT", "111122223333")
REGION = "us-east-1"
HEADS = HeaderCache()
SIGNING_KEYS = SigningKeyCache()
KEYS: dict[str, tuple[str, AESGCM]] = {}  # KeyId as sent -> (key ARN, its cipher)
CONTENT_TYPE = b"application/x-amz-json-1.1"
_audit: AuditLog | None = None


def _key(key_id: str) -> tuple[str, AESGCM]:
    found = KEYS.get(key_id)
    if found is None:
        key_uuid = key_id.rsplit("/", 1)[-1]
        arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_uuid}"
        found = KEYS[key_id] = (arn, AESGCM(AESGCM.generate_key(256)))
    return found


async def _reply(send: Any, status: int, payload: bytes, request_id: str) -> None:
    headers = [
        (b"content-type", CONTENT_TYPE),
        (b"content-length", str(len(payload)).encode()),
        (b"x-amzn-requestid", request_id.encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _lifespan(receive: Any, send: Any) -> None:
    global _audit
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            directory = Path(os.environ.get("FLOOR_AUDIT_DIR", "floor-audit")) / str(os.getpid())
            _audit = AuditLog(directory, fsync=os.environ.get("FLOOR_AUDIT_FSYNC", "on") != "off")
            _audit.start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _audit is not None:
                _audit.stop()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    request_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    raw_headers = scope["headers"]
    fields = {k.decode("latin-1"): v.decode("utf-8", "replace") for k, v in raw_headers}
    request = HttpRequest(
        "POST",
        (scope.get("raw_path") or b"/").decode("latin-1"),
        scope.get("query_string", b"").decode("latin-1"),
        fields.items(),
        body,
        fields,
    )
    try:
        auth = parse_authorization(request, service="kms", heads=HEADS)
        if auth.access_key_id != ACCESS_KEY:
            raise UnrecognizedClientException(
                "The security token included in the request is invalid."
            )
        verify(request, auth, SECRET_KEY, now=now, cache=SIGNING_KEYS)
        params = orjson.loads(body)
        key_id = params["KeyId"]
        plaintext = base64.b64decode(params["Plaintext"], validate=True)
        if not isinstance(key_id, str) or not 1 <= len(plaintext) <= 4096:
            raise ValidationException("KeyId or Plaintext is not valid.")
    except (KmsError, ValueError, KeyError, TypeError, binascii.Error) as exc:
        code = exc.code if isinstance(exc, KmsError) else "ValidationException"
        payload = orjson.dumps({"__type": code, "message": str(exc)})
        await _reply(send, 400, payload, request_id)
        return
    arn, aead = _key(key_id)
    blob = seal(aead.encrypt, ACCOUNT, arn.rsplit("/", 1)[-1], 1, plaintext, b"")
    event = {
        "eventVersion": "1.11",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": auth.access_key_id,
            "arn": f"arn:aws:iam::{ACCOUNT}:user/floor",
            "accountId": ACCOUNT,
            "accessKeyId": auth.access_key_id,
            "userName": "floor",
        },
        "eventTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "kms.amazonaws.com",
        "eventName": "Encrypt",
        "awsRegion": auth.region,
        "sourceIPAddress": scope["client"][0] if scope.get("client") else "127.0.0.1",
        "userAgent": fields.get("user-agent", ""),
        "requestParameters": {
            "keyId": key_id,
            "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
            "encryptionContext": params.get("EncryptionContext") or {},
        },
        "responseElements": None,
        "requestID": request_id,
        "eventID": str(uuid.uuid4()),
        "readOnly": True,
        "resources": [{"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": arn}],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }
    assert _audit is not None, "the lifespan startup starts the audit log"
    await _audit.submit(event)
    payload = orjson.dumps(
        {
            "CiphertextBlob": base64.b64encode(blob).decode(),
            "KeyId": arn,
            "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        }
    )
    await _reply(send, 200, payload, request_id)
