"""Roles that can be assumed: trust policies, maximum session durations, AssumeRole (STS)
and the temporary credentials it issues.

A session's credentials are an ``ASIA`` access key id, a secret (stored wrapped under the
root key, like an access key's), a session token (stored only as its SHA-256) and an
expiration. Requests signed with them carry the token in ``X-Amz-Security-Token``; the
caller is ``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`` with the role's identity
policies and tags (STS "AssumeRole", IAM "Using temporary credentials").
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from strongroom.authz.policy import (
    PolicyKind,
    default_trust_policy,
    named_principals,
    parse_policy,
)
from strongroom.domain.errors import (
    AccessDeniedException,
    MalformedPolicyDocumentException,
    NotFoundException,
    ValidationException,
)
from strongroom.domain.ids import ROLE_ARN_RE, assumed_role_arn, role_unique_id
from strongroom.domain.models import Caller, Principal
from strongroom.services.access import authorize_assume_role
from strongroom.services.core import Core
from strongroom.services.identities import (
    DEFAULT_MAX_SESSION_DURATION,
    TEMPORARY_PREFIX,
    check_max_session_duration,
    new_access_key_id,
    new_secret_access_key,
    secret_aad,
    token_sha256,
)
from strongroom.services.policies import INVALID_PRINCIPALS, principals_exist
from strongroom.storage.ports import SessionRecord, Transaction

# AssumeRoleRequest of the STS model (botocore sts/2011-06-15): roleDurationSecondsType,
# roleSessionNameType, arnType.
MIN_DURATION = 900
MAX_DURATION = 43200
DEFAULT_DURATION = 3600
# "When you use role chaining, your new credentials are limited to a maximum duration of
# one hour" (IAM "Role terms and concepts"); AWS's ValidationError text below.
CHAINED_MAX_DURATION = 3600
_SESSION_NAME_RE = re.compile(r"[\w+=,.@-]*", re.ASCII)
_EXTERNAL_ID_RE = re.compile(r"[\w+=,.@:/-]*", re.ASCII)

ROOT_REFUSED = "Roles may not be assumed by root accounts."
CHAINED_TOO_LONG = (
    "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by "
    "role chaining."
)
# STS's ValidationError when DurationSeconds is over the role's MaxSessionDuration (the text
# AWS answers, as SDK users report it; AssumeRole "DurationSeconds": "If you specify a value
# higher than this setting ..., the operation fails").
OVER_ROLE_MAXIMUM = (
    "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
)


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """Temporary credentials as STS returns them (the only time the secret and the token
    are seen)."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime
    assumed_role_arn: str
    assumed_role_id: str


def check_assume_role_request(role_arn: str, session_name: str, duration_seconds: int) -> None:
    """The constraints of AssumeRoleRequest's members, as STS reports them: one
    ValidationException listing every violation ("N validation error(s) detected: Value
    'x' at 'roleSessionName' failed to satisfy constraint: ..."), then "Request ARN is
    invalid" when ``role_arn`` is not an IAM role ARN."""
    problems: list[str] = []

    def violated(value: object, member: str, rule: str) -> None:
        problems.append(
            f"Value '{value}' at '{member}' failed to satisfy constraint: Member must {rule}"
        )

    if len(role_arn) < 20:
        violated(role_arn, "roleArn", "have length greater than or equal to 20")
    if len(role_arn) > 2048:
        violated(role_arn, "roleArn", "have length less than or equal to 2048")
    if not _SESSION_NAME_RE.fullmatch(session_name):
        violated(
            session_name, "roleSessionName", r"satisfy regular expression pattern: [\w+=,.@-]*"
        )
    if len(session_name) < 2:
        violated(session_name, "roleSessionName", "have length greater than or equal to 2")
    if len(session_name) > 64:
        violated(session_name, "roleSessionName", "have length less than or equal to 64")
    if duration_seconds < MIN_DURATION:
        violated(
            duration_seconds,
            "durationSeconds",
            f"have value greater than or equal to {MIN_DURATION}",
        )
    if duration_seconds > MAX_DURATION:
        violated(
            duration_seconds, "durationSeconds", f"have value less than or equal to {MAX_DURATION}"
        )
    if problems:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        raise ValidationException(f"{count} validation {noun} detected: " + "; ".join(problems))
    if not ROLE_ARN_RE.fullmatch(role_arn):
        raise ValidationException("Request ARN is invalid")


def _new_session_token() -> str:
    # Opaque to clients, like AWS's: 128 random bytes, base64.
    return base64.b64encode(secrets.token_bytes(128)).decode()


def issue_session(
    core: Core, role_arn: str, session_name: str, duration_seconds: int = DEFAULT_DURATION
) -> IssuedSession:
    """Temporary credentials for ``role_arn``, valid ``duration_seconds`` from now; what
    ``strongroom admin assume-role`` gives an operator (no trust policy is consulted).

    Raises ValidationException (the AssumeRole constraints, the role's MaxSessionDuration)
    or NotFoundException (no such role)."""
    check_assume_role_request(role_arn, session_name, duration_seconds)
    with core.store.transaction() as tx:
        role = tx.identities.get_principal(role_arn)
        maximum = tx.identities.get_max_session_duration(role_arn)
    if role is None or role.kind != "role":
        raise NotFoundException(f"Role {role_arn} does not exist.")
    _check_role_maximum(duration_seconds, maximum)
    return _issue(core, role, session_name, duration_seconds)


def _check_role_maximum(duration_seconds: int, maximum: int | None) -> None:
    """ValidationException when ``duration_seconds`` exceeds the role's MaxSessionDuration
    (``maximum``, None: the default)."""
    if duration_seconds > (maximum or DEFAULT_MAX_SESSION_DURATION):
        raise ValidationException(OVER_ROLE_MAXIMUM)


def _issue(core: Core, role: Principal, session_name: str, duration_seconds: int) -> IssuedSession:
    access_key_id = new_access_key_id(TEMPORARY_PREFIX)
    secret = new_secret_access_key()
    token = _new_session_token()
    now = core.clock()
    # STS gives expirations to the second.
    expiration = now.replace(microsecond=0) + timedelta(seconds=duration_seconds)
    record = SessionRecord(
        access_key_id=access_key_id,
        role=role,
        session_name=session_name,
        wrapped_secret=core.root_key.wrap(secret.encode(), secret_aad(access_key_id)),
        token_sha256=token_sha256(token),
        created=now,
        expiration=expiration,
    )
    with core.store.transaction() as tx:
        tx.sessions.insert(record)
    return IssuedSession(
        access_key_id,
        secret,
        token,
        expiration,
        assumed_role_arn(role.arn, session_name),
        f"{role_unique_id(role.arn)}:{session_name}",
    )


def assume_role(
    core: Core,
    caller: Caller,
    role_arn: str,
    session_name: str,
    duration_seconds: int = DEFAULT_DURATION,
    *,
    external_id: str | None = None,
) -> IssuedSession:
    """STS AssumeRole: temporary credentials for ``role_arn`` if its trust policy (and, when
    that names the caller's account, the caller's identity policies) allow the caller
    ``sts:AssumeRole``; the trust policy's conditions see ``sts:RoleSessionName`` and
    ``sts:ExternalId``.

    Raises ValidationException (the request constraints; more than an hour when a role
    session assumes a role; more than the role's MaxSessionDuration, checked once the caller
    is allowed), AccessDeniedException (the account root; not allowed; no such role, which
    AWS does not tell apart from not allowed)."""
    check_assume_role_request(role_arn, session_name, duration_seconds)
    if external_id is not None and not (
        2 <= len(external_id) <= 1224 and _EXTERNAL_ID_RE.fullmatch(external_id)
    ):
        raise ValidationException(
            f"1 validation error detected: Value '{external_id}' at 'externalId' failed to "
            r"satisfy constraint: Member must be 2-1224 characters of [\w+=,.@:/-]"
        )
    if caller.principal.kind == "root":
        raise AccessDeniedException(ROOT_REFUSED)
    if caller.session is not None and duration_seconds > CHAINED_MAX_DURATION:
        raise ValidationException(CHAINED_TOO_LONG)
    with core.store.transaction() as tx:
        role = tx.identities.get_principal(role_arn)
        trust = None if role is None else tx.identities.get_trust_policy(role_arn)
        maximum = None if role is None else tx.identities.get_max_session_duration(role_arn)
    if role is None or role.kind != "role":
        raise AccessDeniedException(
            f"User: {caller.principal.arn} is not authorized to perform: sts:AssumeRole "
            f"on resource: {role_arn}"
        )
    context = {"sts:RoleSessionName": session_name}
    if external_id is not None:
        context["sts:ExternalId"] = external_id
    trust = trust or default_trust_policy(role.account)
    authorize_assume_role(core, caller, role_arn, trust, context)
    # Only a caller the role trusts learns its maximum.
    _check_role_maximum(duration_seconds, maximum)
    return _issue(core, role, session_name, duration_seconds)


def _role_arn(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


def update_trust_policy(core: Core, account: str, name: str, document: str) -> str:
    """Replace a role's trust policy (IAM UpdateAssumeRolePolicy); returns the role's ARN.

    Raises MalformedPolicyDocumentException (grammar, a Resource element, principals that
    do not exist), LimitExceededException (size), NotFoundException (no such role)."""
    arn = _role_arn(account, name)
    policy = parse_policy(document, PolicyKind.TRUST)
    now = core.clock()
    with core.store.transaction() as tx:
        _existing_role(tx, arn)
        if not principals_exist(tx, named_principals(policy)):
            raise MalformedPolicyDocumentException(INVALID_PRINCIPALS)
        tx.identities.put_trust_policy(arn, document, now)
    return arn


def get_trust_policy(core: Core, account: str, name: str) -> str:
    """A role's trust policy document (the default one when none was set)."""
    arn = _role_arn(account, name)
    with core.store.transaction() as tx:
        _existing_role(tx, arn)
        return tx.identities.get_trust_policy(arn) or default_trust_policy(account)


def get_max_session_duration(core: Core, account: str, name: str) -> int:
    """A role's MaxSessionDuration in seconds (one hour unless set)."""
    arn = _role_arn(account, name)
    with core.store.transaction() as tx:
        _existing_role(tx, arn)
        return tx.identities.get_max_session_duration(arn) or DEFAULT_MAX_SESSION_DURATION


def update_max_session_duration(core: Core, account: str, name: str, seconds: int) -> str:
    """Set a role's MaxSessionDuration (IAM UpdateRole), which AssumeRole's DurationSeconds
    may not exceed from then on; sessions already issued keep their expiration. Returns the
    role's ARN. Raises ValidationException (outside 3600-43200), NotFoundException."""
    check_max_session_duration(seconds)
    arn = _role_arn(account, name)
    with core.store.transaction() as tx:
        _existing_role(tx, arn)
        tx.identities.set_max_session_duration(arn, seconds)
    return arn


def _existing_role(tx: Transaction, arn: str) -> None:
    role = tx.identities.get_principal(arn)
    if role is None or role.kind != "role":
        raise NotFoundException(f"Role {arn} does not exist.")


def prune_sessions(core: Core, keep_expired: timedelta = timedelta(days=1)) -> int:
    """Forget temporary credentials that expired more than ``keep_expired`` ago (until then
    they are refused as expired; afterwards as unknown, as AWS does); how many."""
    with core.store.transaction() as tx:
        return tx.sessions.delete_expired(core.clock() - keep_expired)
