"""SecureString values of Parameter Store, encrypted and decrypted through this server's own
KMS the way Parameter Store calls AWS KMS ("How AWS Systems Manager Parameter Store uses AWS
KMS"): a standard-tier value is encrypted by KMS Encrypt directly under the parameter's key
(``alias/aws/ssm``, the AWS managed key made on its first use, or the customer key given as
KeyId), with the encryption context ``{"PARAMETER_ARN": <parameter ARN>}``, and decrypted by
KMS Decrypt with the same context.

Each call is the caller's, made by SSM on their behalf: the caller's identity and
permissions, kms:ViaService ``ssm.<region>.amazonaws.com`` in the authorization context
(``RequestContext.via_service``, read by ``services.access`` alone), and its own KMS audit
event (eventSource kms.amazonaws.com, ``invokedBy`` ssm.amazonaws.com), added to the SSM
request's ``service_events`` so the pipeline writes it before the SSM event. A KMS error
becomes the SSM error Parameter Store returns for it, with KMS's text and code inside.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.audit.events import EVENT_SOURCE, build_event, caller_identity, invoked_by
from strongroom.authz.context_keys import via_service
from strongroom.domain.enums import SpecFamily
from strongroom.domain.errors import AccessDeniedException, KmsError
from strongroom.domain.parameters import ENCRYPTION_CONTEXT_KEY
from strongroom.domain.requestids import new_id
from strongroom.domain.ssm_errors import InvalidKeyId
from strongroom.services import encryption
from strongroom.services.core import Core, RequestContext
from strongroom.services.resolve import find_key

SERVICE = "ssm"
SERVICE_HOST = "ssm.amazonaws.com"
_ALGORITHM = "SYMMETRIC_DEFAULT"


def encrypt_value(
    core: Core, ctx: RequestContext, key_id: str, plaintext: str, parameter_arn: str
) -> bytes:
    """The KMS ciphertext blob of ``plaintext`` under ``key_id`` (a symmetric encryption key:
    id, ARN, alias name or alias ARN), encrypted as Parameter Store does for the caller of
    ``ctx``. Raises InvalidKeyId (unknown, disabled, pending deletion or unfit key) and
    AccessDeniedException (the key policy or IAM refuses kms:Encrypt via SSM)."""
    context = {ENCRYPTION_CONTEXT_KEY: parameter_arn}
    kms = _on_behalf(ctx)
    request = {"KeyId": key_id, "EncryptionContext": context, "EncryptionAlgorithm": _ALGORITHM}
    try:
        key = find_key(core, kms, key_id)
        if key.key_spec.family is not SpecFamily.SYMMETRIC:
            raise InvalidKeyId(
                f"{key_id} is not a symmetric encryption KMS key: Parameter Store encrypts "
                "SecureString parameters with symmetric encryption keys only."
            )
        sealed = encryption.encrypt(core, kms, key_id, plaintext.encode(), context=context)
    except KmsError as error:
        _record(core, ctx, kms, "Encrypt", request, error)
        raise _as_ssm_error(error, kms.request_id) from None
    _record(core, ctx, kms, "Encrypt", request, None)
    return sealed.ciphertext


def decrypt_value(core: Core, ctx: RequestContext, ciphertext: bytes, parameter_arn: str) -> str:
    """The plaintext of a SecureString value stored as ``ciphertext`` for the parameter
    ``parameter_arn``, decrypted as Parameter Store does for the caller of ``ctx``. Raises
    InvalidKeyId (the key is disabled, pending deletion or gone) and AccessDeniedException
    (kms:Decrypt via SSM refused)."""
    context = {ENCRYPTION_CONTEXT_KEY: parameter_arn}
    kms = _on_behalf(ctx)
    request = {"EncryptionContext": context, "EncryptionAlgorithm": _ALGORITHM}
    try:
        opened = encryption.decrypt(core, kms, ciphertext, context=context)
    except KmsError as error:
        _record(core, ctx, kms, "Decrypt", request, error)
        raise _as_ssm_error(error, kms.request_id) from None
    _record(core, ctx, kms, "Decrypt", request, None)
    return opened.plaintext.decode()


def _on_behalf(ctx: RequestContext) -> RequestContext:
    """The context of a KMS request SSM makes for the caller of ``ctx``: same caller, its
    own request id and event id, kms:ViaService set."""
    return RequestContext(ctx.caller, new_id(), via_service=via_service(SERVICE, ctx.region))


def _record(
    core: Core,
    ctx: RequestContext,
    kms: RequestContext,
    operation: str,
    request: Mapping[str, Any],
    error: KmsError | None,
) -> None:
    """Add the KMS call's audit event, as CloudTrail records a call an AWS service made on a
    principal's behalf: the principal's identity with ``invokedBy``, the service as source
    address and user agent. A call that succeeded is a use of its key (GetKeyLastUsage), as
    AWS counts the calls an integrated service makes."""
    when = core.clock()
    if error is None:
        ctx.service_uses = (*ctx.service_uses, (kms, operation, when))
    event = build_event(
        event_time=when,
        event_name=operation,
        region=ctx.region,
        request_id=kms.request_id,
        source_ip=SERVICE_HOST,
        user_agent=SERVICE_HOST,
        user_identity=invoked_by(caller_identity(ctx.caller), SERVICE_HOST),
        request_parameters=request,
        response_elements=None,
        resources=kms.resources,
        error_code=None if error is None else error.code,
        error_message=None if error is None else error.message,
        event_source=EVENT_SOURCE,
        event_id=kms.event_id,
    )
    ctx.service_events = (*ctx.service_events, event)


# KMS errors that Parameter Store reports as InvalidKeyId: the key cannot serve.
_INVALID_KEY = frozenset(
    {
        "NotFoundException",
        "DisabledException",
        "KMSInvalidStateException",
        "InvalidKeyUsageException",
        "IncorrectKeyException",
        "KeyUnavailableException",
        "InvalidKeyId",
        # A blob whose key no longer exists (deleted after its waiting period).
        "InvalidCiphertextException",
    }
)


def _as_ssm_error(error: KmsError, kms_request_id: str) -> KmsError:
    """The SSM error for a failed KMS call, its text as SSM passes it on: KMS's message, then
    ``(Service: AWSKMS; Status Code: 400; Error Code: <code>; Request ID: <id>; Proxy: null)``
    (e.g. InvalidKeyId "... is disabled. (Service: AWSKMS; ... Error Code:
    DisabledException; ...)")."""
    if isinstance(error, InvalidKeyId):
        return error
    detail = (
        f"{error.message} (Service: AWSKMS; Status Code: {error.status}; Error Code: "
        f"{error.code}; Request ID: {kms_request_id}; Proxy: null)"
    ).lstrip()
    if error.code in _INVALID_KEY:
        return InvalidKeyId(detail)
    if isinstance(error, AccessDeniedException):
        return AccessDeniedException(detail)
    return error
