"""STS GetCallerIdentity: who the credentials of a request belong to.

The answer is ``UserId``, ``Account`` and ``Arn``, with ``UserId`` the value of
``aws:userid`` in IAM's policy-variables principal table: the user's unique id (``AIDA...``)
for an IAM user, ``ROLE_ID:SESSION_NAME`` for a role session (``AROA...:name``), the account
id for the account root. No permission is needed: "No permissions are required to perform
this operation", and an explicit Deny of ``sts:GetCallerIdentity`` does not stop it (STS API
reference, "GetCallerIdentity").
"""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.domain.ids import user_unique_id
from strongroom.domain.models import Caller


@dataclass(frozen=True, slots=True)
class CallerIdentity:
    """GetCallerIdentityResult's members."""

    user_id: str
    account: str
    arn: str


def get_caller_identity(caller: Caller) -> CallerIdentity:
    """The identity of an authenticated ``caller``; never refused."""
    principal = caller.principal
    if caller.session is not None:
        user_id = f"{caller.session.role_id}:{caller.session.session_name}"
    elif principal.kind == "user":
        user_id = user_unique_id(principal.arn)
    else:  # the account root, whose aws:userid is the account id
        user_id = principal.account
    return CallerIdentity(user_id, principal.account, principal.arn)
