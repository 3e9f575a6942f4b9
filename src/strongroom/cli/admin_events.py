"""Which audit event each ``strongroom admin`` command that changes state leaves, and what it
holds: one table, keyed by the command (``command_of``). A command not in it (``list-*``,
``get-role``, ``hsm-cluster list``, ``fault list``, ``quota list``) only reads and leaves
nothing.

The IAM and STS commands are recorded as CloudTrail records those APIs: eventSource
``iam.amazonaws.com`` (``sts.amazonaws.com`` for ``assume-role``), eventName the API's name,
requestParameters and responseElements with the API's members (lower camel at the top, as
the server's events show them; ``audit/events.py`` ``scrub``), never a secret: CreateAccessKey
gives the access key id and status, AssumeRole the credentials' access key id and expiration.
What IAM has no member for goes to ``additionalEventData``: the keys or sessions that
``delete-user --force`` / ``delete-role --force`` deleted with the principal, the profile and
file ``create-access-key --as-profile`` wrote. ``resources`` names the user, role or account
root a successful change touched; ``recipientAccountId`` the account changed.

The others change what no AWS API changes this way, so they are Strongroom's own events,
eventSource ``admin.strongroom``: CreateAccount (``create-account``), RegisterHsmCluster and
RemoveHsmCluster (``hsm-cluster add|remove``: a token registered as a cluster; CloudHSM's
CreateCluster makes HSMs, which this does not), SetFault and ClearFaults (``fault``),
SetQuota and ResetQuota (``quota``: Service Quotas' RequestServiceQuotaIncrease asks AWS for
a value, which this sets), MigrateRootKey and RotateRootKey (``root-key migrate|rotate``,
their summary as the response), RestoreBackup (``restore``, into the trail it restores: an
event without an intent, since the target's audit directory must be empty before). Their
members are named in the same PascalCase style (an HSM
cluster's KeyStorePassword never).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strongroom.audit.events import ADMIN_EVENT_SOURCE, IAM_EVENT_SOURCE, STS_EVENT_SOURCE
from strongroom.domain.ids import role_unique_id, user_unique_id

# Subcommand attributes of the admin commands that have actions of their own.
_ACTIONS = ("hsm_cluster_command", "fault_command", "quota_command", "root_key_command")


@dataclass(frozen=True, slots=True)
class Members:
    """What one command's intent and event hold of the command: ``request`` (both), then,
    in the event of a command that succeeded, ``response``, ``resources`` (ARNs) and
    ``details`` (``additionalEventData``); ``account``: the account changed
    (``recipientAccountId``), None when the change is not one account's."""

    request: dict[str, Any] | None
    account: str | None = None
    resources: tuple[str, ...] = ()
    response: dict[str, Any] | None = None
    details: dict[str, Any] | None = None


# A command's members from its arguments and, once it succeeded, its output (None before it
# runs and when it was refused).
MembersOf = Callable[[argparse.Namespace, Any], Members]


@dataclass(frozen=True, slots=True)
class Audited:
    """How one admin command that changes state is recorded."""

    source: str
    name: str
    members: MembersOf


def command_of(args: argparse.Namespace) -> str:
    """The admin command ``args`` runs, with its action: ``create-user``, ``quota set``."""
    action = next((getattr(args, a) for a in _ACTIONS if getattr(args, a, None)), None)
    return str(args.admin_command) + (f" {action}" if action else "")


def audited(args: argparse.Namespace) -> Audited | None:
    """How the command of ``args`` is recorded; None when it only reads."""
    return EVENTS.get(command_of(args))


def _account(args: argparse.Namespace) -> str:
    from strongroom.cli.admin import _account as account_of

    return account_of(args)


def _arn(account: str, kind: str, name: str) -> str:
    return f"arn:aws:iam::{account}:{kind}/{name}"


def _account_of_arn(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4] else None


_NAME_MEMBER = {"user": "UserName", "role": "RoleName"}


def _principal(kind: str, more: Callable[[argparse.Namespace], dict[str, Any]]) -> MembersOf:
    """The members of a change to a user or role that IAM answers with nothing: its name
    member, then ``more``."""

    def members(args: argparse.Namespace, output: Any) -> Members:
        account = _account(args)
        request = {_NAME_MEMBER[kind]: args.name, **more(args)}
        touched = () if output is None else (_arn(account, kind, args.name),)
        return Members(request, account, touched)

    return members


def _create_account(args: argparse.Namespace, output: Any) -> Members:
    account = str(args.account_id)
    if output is None:
        return Members({"AccountId": account}, account)
    response = {"AccountId": account, "RootArn": output["RootArn"], "Created": output["Created"]}
    return Members({"AccountId": account}, account, (output["RootArn"],), response)


def _create_user(args: argparse.Namespace, output: Any) -> Members:
    account = _account(args)
    if output is None:
        return Members({"UserName": args.name}, account)
    arn = output["Arn"]
    user = {"Path": "/", "UserName": args.name, "UserId": user_unique_id(arn), "Arn": arn}
    return Members({"UserName": args.name}, account, (arn,), {"User": user})


def _create_role(args: argparse.Namespace, output: Any) -> Members:
    account = _account(args)
    request: dict[str, Any] = {"RoleName": args.name}
    if args.max_session_duration is not None:
        request["MaxSessionDuration"] = args.max_session_duration
    if output is None:
        return Members(request, account)
    arn = output["Arn"]
    role = {
        "Path": "/",
        "RoleName": args.name,
        "RoleId": role_unique_id(arn),
        "Arn": arn,
        "MaxSessionDuration": output["MaxSessionDuration"],
    }
    return Members(request, account, (arn,), {"Role": role})


def _create_access_key(args: argparse.Namespace, output: Any) -> Members:
    arn = str(args.principal_arn)
    # IAM's CreateAccessKey names a user, or nobody (the caller's own key: an account root's).
    user = arn.rsplit("/", 1)[-1] if ":user/" in arn else None
    request = None if user is None else {"UserName": user}
    if output is None:
        return Members(request, _account_of_arn(arn))
    key: dict[str, Any] = {"AccessKeyId": output["AccessKeyId"], "Status": "Active"}
    if user is not None:
        key["UserName"] = user
    details = None
    if args.as_profile is not None:
        details = {"asProfile": args.as_profile, "credentialsFile": output["CredentialsFile"]}
    return Members(request, _account_of_arn(arn), (arn,), {"AccessKey": key}, details)


def _delete_access_key(args: argparse.Namespace, output: Any) -> Members:
    request = {"AccessKeyId": args.access_key_id}
    if output is None:
        return Members(request)
    owner = str(output["PrincipalArn"])
    return Members(request, _account_of_arn(owner), (owner,))


def _delete_principal(kind: str) -> MembersOf:
    gone = "DeletedAccessKeys" if kind == "user" else "DeletedSessions"

    def members(args: argparse.Namespace, output: Any) -> Members:
        found = _principal(kind, lambda _: {})(args, output)
        if output is None:
            return found
        details = {"force": args.force, gone[:1].lower() + gone[1:]: output[gone]}
        return Members(found.request, found.account, found.resources, details=details)

    return members


def _tags(args: argparse.Namespace) -> dict[str, Any]:
    pairs = (text.partition("=") for text in args.tags)
    return {"Tags": [{"Key": key, "Value": value} for key, _, value in pairs]}


def _assume_role(args: argparse.Namespace, output: Any) -> Members:
    request = {
        "RoleArn": args.role_arn,
        "RoleSessionName": args.session_name,
        "DurationSeconds": args.duration_seconds,
    }
    account = _account_of_arn(str(args.role_arn))
    if output is None:
        return Members(request, account)
    credentials = output["Credentials"]
    response = {
        # What CloudTrail shows of the credentials but their session token: never a secret.
        "Credentials": {
            "AccessKeyId": credentials["AccessKeyId"],
            "Expiration": credentials["Expiration"],
        },
        "AssumedRoleUser": output["AssumedRoleUser"],
    }
    return Members(request, account, (str(args.role_arn),), response)


def _add_cluster(args: argparse.Namespace, output: Any) -> Members:
    account = _account(args)
    request = {
        "ClusterId": args.cluster_id,
        "AccountId": account,
        "Module": None if args.module is None else str(args.module),
        "TokenLabel": args.token_label,
        "HsmCount": args.hsm_count,
        "SoftHsm": args.softhsm,
    }
    if output is None:
        return Members(request, account)
    response = {"ClusterId": output["ClusterId"]}
    if "TrustAnchorCertificate" in output:
        response["TrustAnchorCertificate"] = output["TrustAnchorCertificate"]
    return Members(request, account, response=response)


def _remove_cluster(args: argparse.Namespace, output: Any) -> Members:
    account = _account(args)
    return Members({"ClusterId": args.cluster_id, "AccountId": account}, account)


def _one_account(account: str | None) -> str | None:
    """The account a fault or quota value is for; None for every account ("*")."""
    return account if account is not None and account.isdigit() else None


def _set_fault(args: argparse.Namespace, output: Any) -> Members:
    spec = args.fault
    request = {
        "Account": spec.account_id,
        "Operation": spec.operation,
        "Error": spec.error_code,
        "Rate": spec.rate,
        "LatencyMs": spec.latency_ms,
    }
    response = None if output is None else output["Fault"]
    return Members(request, _one_account(spec.account_id), response=response)


def _clear_faults(args: argparse.Namespace, output: Any) -> Members:
    request = {"Account": args.fault_account, "Operation": args.fault_operation}
    return Members(request, _one_account(args.fault_account), response=output)


def _set_quota(args: argparse.Namespace, output: Any) -> Members:
    request = {"QuotaName": args.name, "Account": args.quota_account, "Value": args.number}
    return Members(request, _one_account(args.quota_account), response=output)


def _reset_quota(args: argparse.Namespace, output: Any) -> Members:
    request = {"QuotaName": args.name, "Account": args.quota_account}
    return Members(request, _one_account(args.quota_account), response=output)


def _move_root_key(args: argparse.Namespace, output: Any) -> Members:
    request: dict[str, Any] = {"GraceSeconds": args.grace, "BatchSize": args.batch_size}
    if args.root_key_command == "migrate":
        request = {"To": args.to, **request}
    return Members(request, response=output)


def _restore(args: argparse.Namespace, output: Any) -> Members:
    return Members({"BackupFile": str(args.file)}, response=output)


def _iam_pair(kind: str) -> dict[str, Audited]:
    """The commands that IAM has for users and roles alike."""
    k = kind.capitalize()

    def policy(args: argparse.Namespace) -> dict[str, Any]:
        return {"PolicyName": args.policy_name, "PolicyDocument": args.policy_document}

    def iam(name: str, members: MembersOf) -> Audited:
        return Audited(IAM_EVENT_SOURCE, name, members)

    return {
        f"delete-{kind}": iam(f"Delete{k}", _delete_principal(kind)),
        f"put-{kind}-policy": iam(f"Put{k}Policy", _principal(kind, policy)),
        f"delete-{kind}-policy": iam(
            f"Delete{k}Policy", _principal(kind, lambda a: {"PolicyName": a.policy_name})
        ),
        f"tag-{kind}": iam(f"Tag{k}", _principal(kind, _tags)),
        f"untag-{kind}": iam(f"Untag{k}", _principal(kind, lambda a: {"TagKeys": a.tag_keys})),
    }


EVENTS: dict[str, Audited] = {
    "create-account": Audited(ADMIN_EVENT_SOURCE, "CreateAccount", _create_account),
    "create-user": Audited(IAM_EVENT_SOURCE, "CreateUser", _create_user),
    "create-role": Audited(IAM_EVENT_SOURCE, "CreateRole", _create_role),
    "create-access-key": Audited(IAM_EVENT_SOURCE, "CreateAccessKey", _create_access_key),
    "delete-access-key": Audited(IAM_EVENT_SOURCE, "DeleteAccessKey", _delete_access_key),
    **_iam_pair("user"),
    **_iam_pair("role"),
    "update-assume-role-policy": Audited(
        IAM_EVENT_SOURCE,
        "UpdateAssumeRolePolicy",
        _principal("role", lambda a: {"PolicyDocument": a.policy_document}),
    ),
    "update-role": Audited(
        IAM_EVENT_SOURCE,
        "UpdateRole",
        _principal("role", lambda a: {"MaxSessionDuration": a.max_session_duration}),
    ),
    "assume-role": Audited(STS_EVENT_SOURCE, "AssumeRole", _assume_role),
    "hsm-cluster add": Audited(ADMIN_EVENT_SOURCE, "RegisterHsmCluster", _add_cluster),
    "hsm-cluster remove": Audited(ADMIN_EVENT_SOURCE, "RemoveHsmCluster", _remove_cluster),
    "fault set": Audited(ADMIN_EVENT_SOURCE, "SetFault", _set_fault),
    "fault clear": Audited(ADMIN_EVENT_SOURCE, "ClearFaults", _clear_faults),
    "quota set": Audited(ADMIN_EVENT_SOURCE, "SetQuota", _set_quota),
    "quota reset": Audited(ADMIN_EVENT_SOURCE, "ResetQuota", _reset_quota),
    "root-key migrate": Audited(ADMIN_EVENT_SOURCE, "MigrateRootKey", _move_root_key),
    "root-key rotate": Audited(ADMIN_EVENT_SOURCE, "RotateRootKey", _move_root_key),
    "restore": Audited(ADMIN_EVENT_SOURCE, "RestoreBackup", _restore),
}
