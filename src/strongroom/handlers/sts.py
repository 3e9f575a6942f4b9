"""Handlers of the STS endpoint: AssumeRole and GetCallerIdentity (form parameters in, the
operation's Result members out)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from strongroom.domain.errors import ValidationException
from strongroom.services import sessions
from strongroom.services.caller_identity import get_caller_identity
from strongroom.services.core import Core, RequestContext

Request = Mapping[str, str]
Response = dict[str, Any]
Handler = Callable[[Core, RequestContext, Request], Response]

# AssumeRole members this server does not implement. Each narrows or records what the
# session may do (session policies, session tags, MFA, source identity), so ignoring one
# would hand out more than was asked for: they are refused instead.
_UNSUPPORTED = (
    "Policy",
    "PolicyArns",
    "Tags",
    "TransitiveTagKeys",
    "SerialNumber",
    "TokenCode",
    "SourceIdentity",
    "ProvidedContexts",
)


def _one_error(message: str) -> ValidationException:
    return ValidationException(f"1 validation error detected: {message}")


def _required(req: Request, member: str) -> str:
    value = req.get(member)
    if value is None:
        wire = member[0].lower() + member[1:]
        raise _one_error(
            f"Value null at '{wire}' failed to satisfy constraint: Member must not be null"
        )
    return value


def _duration(req: Request) -> int:
    raw = req.get("DurationSeconds")
    if raw is None:
        return sessions.DEFAULT_DURATION
    try:
        return int(raw)
    except ValueError:
        raise _one_error(
            f"Value '{raw}' at 'durationSeconds' failed to satisfy constraint: "
            "Member must be an integer"
        ) from None


def assume_role(core: Core, ctx: RequestContext, req: Request) -> Response:
    for name in _UNSUPPORTED:
        if any(key == name or key.startswith(name + ".") for key in req):
            raise ValidationException(
                f"AssumeRole parameter {name} is not supported by this server."
            )
    issued = sessions.assume_role(
        core,
        ctx.caller,
        _required(req, "RoleArn"),
        _required(req, "RoleSessionName"),
        _duration(req),
        external_id=req.get("ExternalId"),
    )
    ctx.resources.append(req["RoleArn"])
    return {
        "Credentials": {
            "AccessKeyId": issued.access_key_id,
            "SecretAccessKey": issued.secret_access_key,
            "SessionToken": issued.session_token,
            "Expiration": issued.expiration,
        },
        "AssumedRoleUser": {
            "AssumedRoleId": issued.assumed_role_id,
            "Arn": issued.assumed_role_arn,
        },
    }


def caller_identity(core: Core, ctx: RequestContext, req: Request) -> Response:
    # GetCallerIdentityRequest has no members; like AWS, no permission is checked.
    identity = get_caller_identity(ctx.caller)
    return {"UserId": identity.user_id, "Account": identity.account, "Arn": identity.arn}


HANDLERS: Mapping[str, Handler] = {
    "AssumeRole": assume_role,
    "GetCallerIdentity": caller_identity,
}

CHANGES_STATE = frozenset({"AssumeRole"})  # stores the session it issues
"""The STS actions whose intent is made durable in the audit trail before they run."""
