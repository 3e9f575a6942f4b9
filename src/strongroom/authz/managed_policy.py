"""The key policy AWS gives an AWS managed key, as GetKeyPolicy returns it.

Statements (AWS KMS Developer Guide, "kms:CallerAccount" shows the first one for EBS):

1. every principal of the account may use the key, but only through its service:
   ``StringEquals`` on ``kms:CallerAccount`` (the account) and ``kms:ViaService``
   (``<service>.<region>.amazonaws.com``);
2. (Secrets Manager only) the same for ``kms:GenerateDataKey*`` through the service in any
   Region (``StringLike`` ``secretsmanager.*.amazonaws.com``);
3. "Allow direct access to key metadata to the account": the account root (so IAM policies
   of the account's users and roles) may call ``Describe*``, ``Get*``, ``List*`` and, for the
   services that make grants, ``RevokeGrant``;
4. (some services) the service principal may read the key's metadata directly.

No statement allows PutKeyPolicy, EnableKey, DisableKey, UpdateKeyDescription, the alias and
tag operations, ScheduleKeyDeletion, CancelKeyDeletion or Enable/DisableKeyRotation, so
those are AccessDeniedException for everyone, as in AWS. A direct call never carries
``kms:ViaService`` (see ``authz.decision.request_context``), so direct use of the key
(Encrypt, GenerateDataKey, CreateGrant, ...) is denied too.

The text is laid out the way AWS returns these generated policies: two-space indents,
``"key" : value``, arrays on one line (``[ "a", "b" ]``, ``[ {`` ... ``}, {`` ... ``} ]``).
"""

from __future__ import annotations

import json

from strongroom.domain.ids import account_root_arn
from strongroom.domain.managed import ManagedService

Json = str | list["Json"] | dict[str, "Json"]


def _actions(actions: tuple[str, ...]) -> Json:
    return actions[0] if len(actions) == 1 else list(actions)


def _statements(service: ManagedService, account: str, region: str) -> list[Json]:
    via = f"{service.via_service}.{region}.amazonaws.com"
    statements: list[Json] = [
        {
            "Sid": service.sid,
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": _actions(service.actions),
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:CallerAccount": account, "kms:ViaService": via}},
        }
    ]
    if service.any_region_actions:
        statements.append(
            {
                "Sid": service.sid,
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": _actions(service.any_region_actions),
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"kms:CallerAccount": account},
                    "StringLike": {"kms:ViaService": f"{service.via_service}.*.amazonaws.com"},
                },
            }
        )
    statements.append(
        {
            "Sid": "Allow direct access to key metadata to the account",
            "Effect": "Allow",
            "Principal": {"AWS": account_root_arn(account)},
            "Action": _actions(service.metadata_actions),
            "Resource": "*",
        }
    )
    if service.describing_service is not None:
        sid, principal = service.describing_service
        statements.append(
            {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"Service": principal},
                "Action": ["kms:Describe*", "kms:Get*", "kms:List*"],
                "Resource": "*",
            }
        )
    return statements


def aws_managed_key_policy(service: ManagedService, account: str, region: str) -> str:
    """The policy document of ``service``'s AWS managed key in ``account`` and ``region``."""
    document: Json = {
        "Version": "2012-10-17",
        "Id": service.policy_id,
        "Statement": _statements(service, account, region),
    }
    return _render(document, 0)


def _render(value: Json, depth: int) -> str:
    """AWS's layout: an object's members one a line, indented two spaces a level; arrays
    inline, their objects at the array's own level."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[ " + ", ".join(_render(v, depth) for v in value) + " ]"
    inner = "  " * (depth + 1)
    members = [f"{inner}{json.dumps(k)} : {_render(v, depth + 1)}" for k, v in value.items()]
    return "{\n" + ",\n".join(members) + "\n" + "  " * depth + "}"
