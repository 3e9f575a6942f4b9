"""The wire protocols the request pipeline speaks: AWS JSON 1.1 for KMS and for SSM's
Parameter Store (the operation in ``X-Amz-Target``) and the AWS query protocol for STS (the
operation in a form-encoded body, XML replies). Each says how a request names its operation,
how its input is decoded and dispatched, and how a result or an error goes back on the
wire."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from strongroom.audit.events import EVENT_SOURCE, SSM_EVENT_SOURCE, STS_EVENT_SOURCE
from strongroom.domain.errors import (
    KmsError,
    KMSInternalException,
    UnknownOperationException,
    UnsupportedOperationException,
)
from strongroom.domain.operations import Operation
from strongroom.domain.ssm_errors import InternalServerError
from strongroom.handlers import parameters, registry, sts
from strongroom.protocol import codec, query
from strongroom.protocol.model import ServiceModel
from strongroom.server.asgi import Headers
from strongroom.services.core import Core, RequestContext

Handler = Callable[[Core, RequestContext, Any], dict[str, Any]]
Encoder = Callable[[Mapping[str, Any], str], bytes]  # result, request id -> reply body


@dataclass(frozen=True, slots=True)
class Route:
    """One operation as the pipeline runs it."""

    handler: Handler
    on_loop: bool  # the handler runs on the event loop, not in the thread pool
    encode: Encoder
    # It changes state: its intent is made durable in the audit trail before the handler
    # runs (``Pipeline._record_intent``). Only for routes in the pool.
    intent: bool = False


OPERATION_NAMES = frozenset(o.value for o in Operation)


class WireProtocol(Protocol):
    """How requests of one AWS protocol are read and answered; the pipeline does the rest."""

    @property
    def name(self) -> str:
        """The service, for the log."""

    @property
    def signing_name(self) -> str:
        """The SigV4 service name requests must be signed for."""

    @property
    def content_type(self) -> bytes:
        """The content type of every reply."""

    @property
    def event_source(self) -> str:
        """The audit events' ``eventSource``."""

    @property
    def counts_for_idle(self) -> bool:
        """Whether requests count in the pipeline's idle bookkeeping: one that finds the
        process idle and stays alone writes its audit event itself (the KMS hot path);
        the others' events always join a group commit."""

    def header_operation(self, fields: Mapping[str, str]) -> str:
        """The operation the headers (lower-cased names) name; '' if the body names it."""

    def body_operation(self, body: bytes) -> str:
        """The operation the body names; '' if the headers name it. Raises the protocol's
        SerializationException for a body it cannot read."""

    def decode(
        self, operation: str, fields: Mapping[str, str], body: bytes
    ) -> tuple[Route, dict[str, Any]]:
        """The route of an authenticated request for ``operation`` and its input. Raises
        UnknownOperationException, UnsupportedOperationException, SerializationException
        and ValidationException."""

    def encode_error(self, error: KmsError, request_id: str) -> tuple[bytes, int, Headers]:
        """The body, HTTP status and protocol-specific headers of an error reply."""

    def error_code(self, error: KmsError) -> str:
        """The error code as this protocol names it (the reply's and the audit event's)."""


TARGET_PREFIX = "TrentService."
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"


def _is_json_11(content_type: str | None) -> bool:
    """Whether a Content-Type names AWS JSON 1.1, parameters (``; charset=utf-8``) and
    letter case aside."""
    if content_type is None:
        return False
    return content_type.split(";", 1)[0].strip().lower() == JSON_CONTENT_TYPE


def _wrong_content_type(content_type: str | None) -> UnknownOperationException:
    """What a KMS request whose Content-Type is not AWS JSON 1.1 gets: AWS's front end
    answers HTTP 404 UnknownOperationException (as XML without text; here as the JSON 1.1
    error a KMS client parses, with a sentence saying what to send)."""
    found = "no Content-Type" if not content_type else f"Content-Type {content_type!r}"
    error = UnknownOperationException(
        f"The KMS API takes AWS JSON 1.1 requests, and this one has {found}: "
        f"send Content-Type: {JSON_CONTENT_TYPE}."
    )
    error.status = 404
    return error


class AwsJson:
    """KMS: AWS JSON 1.1, routed on ``X-Amz-Target: TrentService.<Operation>`` (the path
    only counts in the signature). Errors are ``{"__type", "message"}`` with the
    ``X-Amzn-ErrorType`` header; hot-path operations run on the event loop."""

    name = "KMS"
    signing_name = "kms"
    content_type = JSON_CONTENT_TYPE.encode()
    event_source = EVENT_SOURCE
    counts_for_idle = True
    target_prefix = TARGET_PREFIX

    def __init__(self, model: ServiceModel) -> None:
        self._model = model
        # operation -> (its input decoder, its route), built at the operation's first use
        self._routes: dict[str, tuple[Callable[[bytes], dict[str, Any]], Route]] = {}

    def header_operation(self, fields: Mapping[str, str]) -> str:
        target = fields.get("x-amz-target", "")
        prefix = self.target_prefix
        return target[len(prefix) :] if target.startswith(prefix) else target

    def body_operation(self, body: bytes) -> str:
        return ""

    def decode(
        self, operation: str, fields: Mapping[str, str], body: bytes
    ) -> tuple[Route, dict[str, Any]]:
        content_type = fields.get("content-type")
        if content_type != JSON_CONTENT_TYPE and not _is_json_11(content_type):
            raise self._wrong_content_type(content_type)
        if not fields.get("x-amz-target", "").startswith(self.target_prefix):
            raise UnknownOperationException()
        entry = self._routes.get(operation)
        if entry is None:
            entry = self._routes[operation] = self._route(operation)
        decode, route = entry
        return route, decode(body)

    def _route(self, operation: str) -> tuple[Callable[[bytes], dict[str, Any]], Route]:
        operation_codec = self._model.operation(operation)
        handler = self._handler(operation)
        if handler is None:
            raise UnsupportedOperationException(f"{operation} is not supported by this server yet.")

        def encode(result: Mapping[str, Any], request_id: str) -> bytes:
            return operation_codec.encode(result)

        on_loop = self._on_loop(operation)
        intent = not on_loop and self._changes_state(operation)
        return operation_codec.decode, Route(handler, on_loop, encode, intent)

    def _handler(self, operation: str) -> Handler | None:
        known = operation in OPERATION_NAMES  # a newer botocore's model may have more
        return registry.HANDLERS.get(Operation(operation)) if known else None

    def _on_loop(self, operation: str) -> bool:
        return operation in registry.HOT_PATH

    def _changes_state(self, operation: str) -> bool:
        return operation in registry.CHANGES_STATE

    def _wrong_content_type(self, content_type: str | None) -> KmsError:
        return _wrong_content_type(content_type)

    def encode_error(self, error: KmsError, request_id: str) -> tuple[bytes, int, Headers]:
        return codec.encode_error(error), error.status, [(b"x-amzn-errortype", error.code.encode())]

    def error_code(self, error: KmsError) -> str:
        return error.code


# Members of a query request that address the operation, not its input.
_ENVELOPE = frozenset({"Action", "Version"})


class AwsQuery:
    """STS: the AWS query protocol (``Action=AssumeRole&Version=2011-06-15&...``), signed
    for ``sts``, XML replies; errors renamed as STS names them. Handlers run in the pool."""

    name = "STS"
    signing_name = "sts"
    content_type = b"text/xml"
    event_source = STS_EVENT_SOURCE
    counts_for_idle = False

    def __init__(self) -> None:
        self._routes = {
            action: Route(
                handler,
                False,
                functools.partial(query.encode_result, action),
                action in sts.CHANGES_STATE,
            )
            for action, handler in sts.HANDLERS.items()
        }

    def header_operation(self, fields: Mapping[str, str]) -> str:
        return ""

    def body_operation(self, body: bytes) -> str:
        return query.decode_form(body).get("Action", "")

    def decode(
        self, operation: str, fields: Mapping[str, str], body: bytes
    ) -> tuple[Route, dict[str, Any]]:
        form = query.decode_form(body)
        route = self._routes.get(operation)
        if route is None or form.get("Version") != query.STS_VERSION:
            raise UnknownOperationException(
                f"Could not find operation {operation} for version {form.get('Version')}"
            )
        return route, {k: v for k, v in form.items() if k not in _ENVELOPE}

    def encode_error(self, error: KmsError, request_id: str) -> tuple[bytes, int, Headers]:
        body, status = query.encode_error(error, request_id)
        return body, status, []

    def error_code(self, error: KmsError) -> str:
        return query.error_code(error)[0]


SSM_TARGET_PREFIX = "AmazonSSM."


class SsmJson(AwsJson):
    """SSM (Parameter Store): AWS JSON 1.1 routed on ``X-Amz-Target: AmazonSSM.<Operation>``,
    signed for ``ssm``, validated by botocore's SSM model; errors as KMS's JSON errors, but
    an internal error is SSM's InternalServerError. Handlers run in the pool."""

    name = "SSM"
    signing_name = "ssm"
    event_source = SSM_EVENT_SOURCE
    counts_for_idle = False
    target_prefix = SSM_TARGET_PREFIX

    def _handler(self, operation: str) -> Handler | None:
        return parameters.HANDLERS.get(operation)

    def _on_loop(self, operation: str) -> bool:
        return False

    def _changes_state(self, operation: str) -> bool:
        return operation in parameters.CHANGES_STATE

    def _wrong_content_type(self, content_type: str | None) -> KmsError:
        return UnknownOperationException(
            f"The SSM API takes AWS JSON 1.1 requests: send Content-Type: {JSON_CONTENT_TYPE}."
        )

    def encode_error(self, error: KmsError, request_id: str) -> tuple[bytes, int, Headers]:
        return super().encode_error(_ssm_error(error), request_id)

    def error_code(self, error: KmsError) -> str:
        return _ssm_error(error).code


def _ssm_error(error: KmsError) -> KmsError:
    """SSM calls KMS's KMSInternalException InternalServerError; the rest keep their code."""
    if isinstance(error, KMSInternalException):
        renamed = InternalServerError(error.message)
        renamed.injected = error.injected
        return renamed
    return error
