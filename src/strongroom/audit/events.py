"""Audit events in CloudTrail's shape, with secrets left out, and the intent records written
before a request that changes state runs."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from strongroom.domain.models import Caller, RoleSession
from strongroom.domain.requestids import new_id

EVENT_SOURCE = "kms.amazonaws.com"
STS_EVENT_SOURCE = "sts.amazonaws.com"
SSM_EVENT_SOURCE = "ssm.amazonaws.com"
IAM_EVENT_SOURCE = "iam.amazonaws.com"
# The changes of Strongroom's own admin interface that no AWS API makes (an account, a quota
# value, a fault, an HSM cluster registration): ``strongroom admin``'s events (cli/admin_trail).
ADMIN_EVENT_SOURCE = "admin.strongroom"
# What CloudTrail shows for the value of a PutParameter request (any type).
HIDDEN_VALUE = "HIDDEN_DUE_TO_SECURITY_REASONS"
EVENT_VERSION = "1.08"
INTENT = "Intent"  # the recordType of an intent record (``build_intent``)
INTENT_VERSION = "1"

# Members that never go into an event, whatever their type: what they hold is secret.
_SECRET_MEMBERS = frozenset(
    {
        "Plaintext",
        "CiphertextBlob",
        "CiphertextForRecipient",
        "PrivateKeyPlaintext",
        "PrivateKeyCiphertextBlob",
        "SharedSecret",
        "SharedSecretCiphertextBlob",
        "Mac",
        "Signature",
        "Message",
        "EncryptedKeyMaterial",
        "ImportToken",
        "SecretAccessKey",
        "GrantToken",  # a grant token makes its grant usable at once: kept out like a secret
        "GrantTokens",
        "SessionToken",
        "KeyStorePassword",  # a custom key store's kmsuser password (CloudTrail omits it)
        "XksProxyAuthenticationCredential",
    }
)


@functools.lru_cache(maxsize=1024)  # member names come from the service model
def _lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def scrub(members: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Request or response members for an event: lower-camel names, and at every depth
    no secret members and no binary values (nested ones such as
    ``Recipient.AttestationDocument`` included)."""
    if not members:
        return None
    return _scrub_members(members, lower_camel=True) or None


def _scrub_map(members: Mapping[str, Any]) -> dict[str, Any]:
    """Nested names stay as they are: maps such as EncryptionContext hold the caller's keys."""
    return _scrub_members(members, lower_camel=False)


def _scrub_members(members: Mapping[str, Any], *, lower_camel: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in members.items():
        if name in _SECRET_MEMBERS:
            continue
        if type(value) not in _PLAIN:
            value = _scrub_value(value)
            if value is _DROP:
                continue
        out[_lower_camel(name) if lower_camel else name] = value
    return out


_DROP = object()
# Exact types of values that go into an event as they are; anything else (enums and other
# subclasses included) takes _scrub_value.
_PLAIN = frozenset({str, int, float, bool, type(None)})


def _scrub_value(value: Any) -> Any:
    if type(value) is dict:  # the usual nested map, without the Mapping ABC's check
        return _scrub_map(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return _DROP
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return _scrub_map(value)
    if isinstance(value, list | tuple):
        return [v for v in (_scrub_value(item) for item in value) if v is not _DROP]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)  # enums and other plain values; never bytes (handled above)


_SECOND = timedelta(seconds=1)
# The second last formatted, as [start, end) in UTC, and its text.
_NEVER = datetime.max.replace(tzinfo=UTC)
_last_time: tuple[datetime, datetime, str] = (_NEVER, _NEVER, "")


def _event_time(when: datetime) -> str:
    """CloudTrail's second-resolution time, formatted once a second (in UTC: the time of a
    request; another zone or a naive time is formatted each time, as given). The cached
    triple is read once: the scheduled jobs format times on their threads too."""
    global _last_time
    start, end, text = _last_time
    utc = when.tzinfo is UTC
    if utc and start <= when < end:  # two comparisons: cheaper than when.timestamp()
        return text
    text = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    if utc:
        start = when.replace(microsecond=0)
        _last_time = (start, start + _SECOND, text)
    return text


def caller_identity(caller: Caller | None) -> dict[str, Any] | None:
    """CloudTrail's ``userIdentity`` of a caller (None before authentication); shared
    between events, never mutated."""
    if caller is None:
        return None
    p = caller.principal
    # Kept by the principal's fields, not the Principal: a frozen dataclass's hash is a call
    # into Python, the strings' hashes are cached.
    return _identity_of(p.arn, p.account, p.kind, p.name, caller.access_key_id, caller.session)


_TYPES = {"root": "Root", "user": "IAMUser", "role": "AssumedRole", "assumed-role": "AssumedRole"}


@functools.lru_cache(maxsize=4096)
def _identity_of(
    arn: str, account: str, kind: str, name: str, access_key_id: str, session: RoleSession | None
) -> dict[str, Any]:
    identity: dict[str, Any] = {
        "type": _TYPES.get(kind, kind),
        "principalId": arn.rsplit("/", 1)[-1] if kind != "root" else account,
        "arn": arn,
        "accountId": account,
        "accessKeyId": access_key_id,
    }
    if kind == "user":
        identity["userName"] = name
    if session is not None:
        # CloudTrail userIdentity element, "AssumedRole" with its sessionContext.
        identity["principalId"] = f"{session.role_id}:{session.session_name}"
        identity["sessionContext"] = {
            "sessionIssuer": {
                "type": "Role",
                "principalId": session.role_id,
                "arn": session.role_arn,
                "accountId": account,
                "userName": session.role_name,
            },
            "attributes": {
                "creationDate": session.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "mfaAuthenticated": "false",
            },
        }
    return identity


def _resource_type(arn: str) -> str:
    if ":iam::" in arn:
        if ":user/" in arn:
            return "AWS::IAM::User"
        # No AWS resource type names an account's root (an access key's owner, for one).
        return "AWS::IAM::Root" if arn.endswith(":root") else "AWS::IAM::Role"
    if arn.startswith("arn:aws:ssm:"):
        return "AWS::SSM::Parameter"
    return "AWS::KMS::Alias" if ":alias/" in arn else "AWS::KMS::Key"


def build_event(
    *,
    event_time: datetime,
    event_name: str,
    region: str,
    request_id: str,
    source_ip: str,
    user_agent: str,
    user_identity: Mapping[str, Any] | None,
    request_parameters: Mapping[str, Any] | None,
    response_elements: Mapping[str, Any] | None,
    resources: list[str],
    error_code: str | None,
    error_message: str | None,
    event_source: str = EVENT_SOURCE,
    event_id: str | None = None,
    fault_injected: bool = False,
) -> dict[str, Any]:
    """The CloudTrail event of one request; ``event_id`` is its eventID when the request
    already has one (a new id otherwise). ``fault_injected``: the error is one that fault
    injection made (``strongroom admin fault``), which ``additionalEventData`` says."""
    if event_source == SSM_EVENT_SOURCE:
        request_parameters, response_elements = _ssm_members(
            event_name, request_parameters, response_elements
        )
    event: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": user_identity,
        "eventTime": _event_time(event_time),
        "eventSource": event_source,
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": source_ip,
        "userAgent": user_agent,
        "requestParameters": scrub(request_parameters),
        "responseElements": scrub(response_elements),
        "requestID": request_id,
        "eventID": event_id or new_id(),
        "readOnly": _read_only(event_name),
        "resources": [_resource(arn) for arn in dict.fromkeys(resources)],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "eventCategory": "Management",
    }
    if error_code is not None:
        event["errorCode"] = error_code
        event["errorMessage"] = error_message or ""
    if fault_injected:
        event["additionalEventData"] = {"faultInjected": True}
    return event


def build_intent(
    *,
    event_time: datetime,
    event_name: str,
    region: str,
    request_id: str,
    source_ip: str,
    user_agent: str,
    user_identity: Mapping[str, Any] | None,
    request_parameters: Mapping[str, Any] | None,
    event_source: str = EVENT_SOURCE,
) -> dict[str, Any]:
    """The intent record of a request that changes state, written (durably) before its
    handler runs: request ``request_id``, by ``user_identity``, is about to run
    ``event_name`` with these parameters, redacted as its event's are.

    Not a CloudTrail event: its first member is ``"recordType": "Intent"`` (``audit/
    segments.py`` tells the two apart by that prefix, without parsing), it has no
    ``eventVersion``, ``eventID``, ``eventType``, response or error, and the readers of the
    trail skip it or show it as an intent. The members it shares with the request's event
    (``requestID`` above all, which joins the two) have the event's names and values, so
    that ``audit events --intents`` filters both alike. The request's event follows it in
    the trail; an intent without its event is a request whose event could not be written
    (its change may have been made: the intent says it was attempted)."""
    if event_source == SSM_EVENT_SOURCE:
        request_parameters, _ = _ssm_members(event_name, request_parameters, None)
    return {
        "recordType": INTENT,  # first: the prefix that marks an intent (segments.INTENT_PREFIX)
        "intentVersion": INTENT_VERSION,
        "eventTime": _event_time(event_time),
        "eventSource": event_source,
        "eventName": event_name,
        "awsRegion": region,
        "requestID": request_id,
        "userIdentity": user_identity,
        "sourceIPAddress": source_ip,
        "userAgent": user_agent,
        "requestParameters": scrub(request_parameters),
    }


def operator_identity(user: str, host: str) -> dict[str, Any]:
    """The ``userIdentity`` of an operator who ran ``strongroom admin`` on ``host`` as the
    operating system's ``user``: no IAM principal (the command acts on the data directory,
    not through the API), so CloudTrail's type for an identity it cannot map, "Unknown",
    with the user's name, and no ARN, account or access key."""
    return {"type": "Unknown", "principalId": f"{user}@{host}", "userName": user}


AWS_INTERNAL = "AWS Internal"  # who and where a change AWS KMS makes on its own comes from


def service_identity(account: str) -> dict[str, Any]:
    """The ``userIdentity`` of a change AWS KMS makes on its own in ``account`` (a
    scheduled deletion, an automatic rotation, an expiry): no principal, ``invokedBy``
    AWS Internal (CloudTrail's AwsServiceEvent examples)."""
    return {"accountId": account, "invokedBy": AWS_INTERNAL}


def build_service_event(
    *,
    event_time: datetime,
    event_name: str,
    key_arn: str,
    request_id: str,
    response_elements: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The CloudTrail event of a change AWS KMS makes on its own to the key ``key_arn``
    (``eventType`` AwsServiceEvent, no request parameters; ``details`` is its
    ``serviceEventDetails``): the key deleted when its waiting period ends (DeleteKey),
    rotated on its schedule (RotateKey), its imported material erased when it expires
    (DeleteExpiredKeyMaterial). CloudTrail's own entries carry no requestID; this one does,
    to join it to the intent written before the change (``build_intent``)."""
    _, _, _, region, account, _ = key_arn.split(":", 5)
    event: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": service_identity(account),
        "eventTime": _event_time(event_time),
        "eventSource": EVENT_SOURCE,
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": AWS_INTERNAL,
        "userAgent": AWS_INTERNAL,
        "requestParameters": None,
        "responseElements": dict(response_elements) if response_elements else None,
        "requestID": request_id,
        "eventID": new_id(),
        "readOnly": False,
        "resources": [_resource(key_arn)],
        "eventType": "AwsServiceEvent",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if details:
        event["serviceEventDetails"] = dict(details)
    return event


def _ssm_members(
    event_name: str,
    request: Mapping[str, Any] | None,
    response: Mapping[str, Any] | None,
) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]:
    """An SSM event's members: a parameter's value never (PutParameter's ``Value`` shows as
    CloudTrail shows it, hidden), and no response of a read (values, decrypted or not)."""
    if request is not None and "Value" in request:
        request = {**request, "Value": HIDDEN_VALUE}
    if _read_only(event_name):
        response = None
    return request, response


def invoked_by(identity: Mapping[str, Any] | None, service: str) -> dict[str, Any] | None:
    """The ``userIdentity`` of a call that AWS service ``service`` (``ssm.amazonaws.com``)
    made on the principal's behalf: the principal's, with ``invokedBy``."""
    if identity is None:
        return None
    return {**identity, "invokedBy": service}


@functools.lru_cache(maxsize=256)  # operation names
def _read_only(event_name: str) -> bool:
    return event_name.startswith(("Describe", "List", "Get"))


@functools.lru_cache(maxsize=4096)
def _resource(arn: str) -> dict[str, str]:
    """An entry of ``resources``; shared between events, never mutated."""
    return {
        "accountId": arn.split(":")[4],
        "type": _resource_type(arn),
        "ARN": arn,
    }
