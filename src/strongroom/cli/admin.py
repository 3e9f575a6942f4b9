"""``strongroom admin``: accounts, users, roles, access keys, identity policies, IAM tags,
trust policies and temporary credentials."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strongroom.cli import backup, root_key
from strongroom.cli.common import add_storage_options, settings_from
from strongroom.domain.errors import KmsError
from strongroom.server.client_config import credentials_profile
from strongroom.server.settings import ACCOUNT_ID, Settings

if TYPE_CHECKING:
    from strongroom.services.core import Core


def register(commands: Any) -> None:
    admin = commands.add_parser(
        "admin",
        help="manage accounts, users and access keys",
        description="Manage identities in the data directory (the server may be running).",
    )
    sub = admin.add_subparsers(dest="admin_command", required=True, metavar="ACTION")

    def action(
        name: str, help_text: str, run: Callable[[Core, argparse.Namespace], Any]
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
        add_storage_options(p)
        p.set_defaults(run=lambda args: _with_core(args, run))
        return p

    p = action(
        "create-account", "create an account (12-digit id) and its root principal", _create_account
    )
    p.add_argument("account_id")
    p = action("create-user", "create a user in an account", _create_user)
    p.add_argument("name")
    p.add_argument(
        "--in-account", dest="in_account", help="account of the user (default: --account)"
    )
    p = action("create-role", "create a role in an account", _create_role)
    p.add_argument("name")
    p.add_argument(
        "--in-account", dest="in_account", help="account of the role (default: --account)"
    )
    _max_session_duration_option(p, required=False)
    action("list-principals", "list accounts' principals", _list_principals)
    p = action(
        "create-access-key",
        "create a long-term access key for a user or an account root; prints the secret "
        "once (roles have none: their sessions' credentials come from assume-role)",
        _create_access_key,
    )
    p.add_argument("principal_arn", help="e.g. arn:aws:iam::111122223333:user/alice")
    p.add_argument(
        "--as-profile",
        metavar="NAME",
        help="append the key as profile [NAME] to a credentials file (refused if the file "
        "has that profile already) and print no secret",
    )
    p.add_argument(
        "--credentials-file",
        metavar="FILE",
        type=Path,
        help="the file --as-profile appends to, made mode 0600 (default DATA_DIR/credentials)",
    )
    p = action("list-access-keys", "list access keys (never their secrets)", _list_access_keys)
    p.add_argument("--principal", help="only this principal's keys")
    p = action("delete-access-key", "delete an access key", _delete_access_key)
    p.add_argument("access_key_id")
    for kind in ("user", "role"):
        _register_delete_action(action, kind)
        _register_policy_actions(action, kind)
        _register_tag_actions(action, kind)
    _register_role_actions(action)
    from strongroom.cli import hsm_cluster

    hsm_cluster.register(sub, _with_core)
    from strongroom.cli import faults

    faults.register(sub, _with_core)
    from strongroom.cli import quotas

    quotas.register(sub, _with_core)
    root_key.register(sub)
    backup.register(sub)


def _register_delete_action(action: Callable[..., argparse.ArgumentParser], kind: str) -> None:
    what = "access keys" if kind == "user" else "unexpired sessions (from assume-role)"
    p = action(
        f"delete-{kind}",
        f"delete a {kind} with its inline policies, tags"
        + (" and trust policy" if kind == "role" else "")
        + f"; refused while it has {what} unless --force, which deletes those too (a running "
        "server stops accepting them within a second)",
        _delete_principal(kind),
    )
    p.add_argument("name", help=f"the {kind}'s name")
    p.add_argument("--in-account", dest="in_account", help="its account (default: --account)")
    p.add_argument("--force", action="store_true", help=f"delete its {what} too")


def _register_policy_actions(action: Callable[..., argparse.ArgumentParser], kind: str) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("name", help=f"the {kind}'s name")
        p.add_argument("--in-account", dest="in_account", help="its account (default: --account)")

    p = action(
        f"put-{kind}-policy",
        f"attach (or replace) an inline IAM policy of a {kind}",
        _put_policy(kind),
    )
    common(p)
    p.add_argument("policy_file", metavar="POLICY_JSON_FILE", help="the policy document")
    p.add_argument("--policy-name", default="default", help="its name (default: default)")
    p = action(f"list-{kind}-policies", f"list a {kind}'s inline policies", _list_policies(kind))
    common(p)
    p = action(
        f"delete-{kind}-policy", f"delete an inline policy of a {kind}", _delete_policy(kind)
    )
    common(p)
    p.add_argument("--policy-name", default="default", help="its name (default: default)")


def _register_tag_actions(action: Callable[..., argparse.ArgumentParser], kind: str) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("name", help=f"the {kind}'s name")
        p.add_argument("--in-account", dest="in_account", help="its account (default: --account)")

    p = action(
        f"tag-{kind}",
        f"add IAM tags to a {kind}, or replace their values (tag keys are case-insensitive); "
        f"they feed aws:PrincipalTag/<key>, and a running server picks them up within a second",
        _tag(kind),
    )
    common(p)
    p.add_argument("tags", nargs="+", metavar="KEY=VALUE", help="a tag (the value may be empty)")
    p = action(f"untag-{kind}", f"remove IAM tags of a {kind}", _untag(kind))
    common(p)
    p.add_argument("tag_keys", nargs="+", metavar="KEY", help="a tag key")
    p = action(f"list-{kind}-tags", f"list a {kind}'s IAM tags", _list_tags(kind))
    common(p)


def _register_role_actions(action: Callable[..., argparse.ArgumentParser]) -> None:
    p = action(
        "update-assume-role-policy",
        "replace a role's trust policy: who may assume it with STS AssumeRole (a new role "
        "trusts its account, so whoever an identity policy allows sts:AssumeRole on it)",
        _update_trust_policy,
    )
    p.add_argument("name", help="the role's name")
    p.add_argument("policy_file", metavar="POLICY_JSON_FILE", help="the trust policy document")
    p.add_argument("--in-account", dest="in_account", help="its account (default: --account)")
    p = action(
        "get-role", "a role's ARN, id, trust policy, maximum session duration and tags", _get_role
    )
    p.add_argument("name", help="the role's name")
    p.add_argument("--in-account", dest="in_account", help="its account (default: --account)")
    p = action(
        "update-role",
        "change a role's maximum session duration: the longest DurationSeconds AssumeRole "
        "may ask for (sessions already issued keep their expiration)",
        _update_role,
    )
    p.add_argument("name", help="the role's name")
    p.add_argument("--in-account", dest="in_account", help="its account (default: --account)")
    _max_session_duration_option(p, required=True)
    p = action(
        "assume-role",
        "issue temporary credentials of a role (as STS AssumeRole returns them; no trust "
        "policy is consulted: the operator decides); prints the secret and token once",
        _assume_role,
    )
    p.add_argument("--role-arn", required=True, help="e.g. arn:aws:iam::111122223333:role/app")
    p.add_argument("--session-name", required=True, help="2-64 characters of [\\w+=,.@-]")
    p.add_argument(
        "--duration-seconds",
        type=int,
        default=3600,
        help="how long the credentials last, 900 up to the role's maximum session duration "
        "(default 3600)",
    )
    p.add_argument(
        "--as-profile",
        metavar="PROFILE",
        help="print a credentials-file profile of this name instead of JSON",
    )
    p.set_defaults(present=_present_session)


def _max_session_duration_option(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument(
        "--max-session-duration",
        dest="max_session_duration",
        metavar="SECONDS",
        type=int,
        required=required,
        help="the longest session AssumeRole may give, 3600 to 43200 seconds"
        + ("" if required else " (default 3600)"),
    )


Runner = Callable[["Core", argparse.Namespace], Any]


def _account(args: argparse.Namespace) -> str:
    """The account a command acts in: --in-account, else the configured one (--account,
    STRONGROOM_ACCOUNT, the config file), each checked to be 12 digits."""
    if args.in_account is None:
        return settings_from(args).account
    if not ACCOUNT_ID.fullmatch(args.in_account):
        raise ValueError(
            f"--in-account {args.in_account!r} is not an account id: an account id is "
            "12 digits, e.g. 111122223333"
        )
    return str(args.in_account)


def _read_policy_file(path: str) -> str:
    """The text of a policy document file; ValueError naming the file when it cannot be
    read as UTF-8 text."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ValueError(
            f"policy file {path}: cannot read it: {reason}; give the path of a JSON policy document"
        ) from None
    except UnicodeDecodeError:
        raise ValueError(
            f"policy file {path}: not UTF-8 text; give the path of a JSON policy document"
        ) from None


def _tag_pair(text: str) -> Any:
    from strongroom.domain.models import Tag

    key, equals, value = text.partition("=")
    if not equals:
        raise ValueError(f"tag {text!r} must be KEY=VALUE")
    return Tag(key, value)


def _tags_json(tags: list[Any]) -> list[dict[str, str]]:
    return [{"Key": t.key, "Value": t.value} for t in tags]


def _tag(kind: str) -> Runner:
    def run(core: Core, args: argparse.Namespace) -> dict[str, Any]:
        from strongroom.services.identities import tag_principal

        account = _account(args)
        tags = tag_principal(core, kind, account, args.name, [_tag_pair(t) for t in args.tags])
        return {"Tags": _tags_json(tags)}

    return run


def _untag(kind: str) -> Runner:
    def run(core: Core, args: argparse.Namespace) -> dict[str, Any]:
        from strongroom.services.identities import untag_principal

        account = _account(args)
        return {"Tags": _tags_json(untag_principal(core, kind, account, args.name, args.tag_keys))}

    return run


def _list_tags(kind: str) -> Runner:
    def run(core: Core, args: argparse.Namespace) -> dict[str, Any]:
        from strongroom.services.identities import list_principal_tags

        account = _account(args)
        tags = list_principal_tags(core, kind, account, args.name)
        return {"Tags": _tags_json(tags), "IsTruncated": False}

    return run


def _update_trust_policy(core: Core, args: argparse.Namespace) -> dict[str, str]:
    from strongroom.services.sessions import update_trust_policy

    account = _account(args)
    return {"Arn": update_trust_policy(core, account, args.name, args.policy_document)}


def _get_role(core: Core, args: argparse.Namespace) -> dict[str, Any]:
    from strongroom.domain.ids import role_unique_id
    from strongroom.services.identities import list_principal_tags
    from strongroom.services.sessions import get_max_session_duration, get_trust_policy

    account = _account(args)
    arn = f"arn:aws:iam::{account}:role/{args.name}"
    trust = json.loads(get_trust_policy(core, account, args.name))
    return {
        "Role": {
            "RoleName": args.name,
            "RoleId": role_unique_id(arn),
            "Arn": arn,
            "AssumeRolePolicyDocument": trust,
            "MaxSessionDuration": get_max_session_duration(core, account, args.name),
            "Tags": _tags_json(list_principal_tags(core, "role", account, args.name)),
        }
    }


def _update_role(core: Core, args: argparse.Namespace) -> dict[str, Any]:
    from strongroom.services.sessions import update_max_session_duration

    account = _account(args)
    seconds = args.max_session_duration
    arn = update_max_session_duration(core, account, args.name, seconds)
    return {"Arn": arn, "MaxSessionDuration": seconds}


def _assume_role(core: Core, args: argparse.Namespace) -> dict[str, Any]:
    from strongroom.services.sessions import issue_session

    issued = issue_session(core, args.role_arn, args.session_name, args.duration_seconds)
    return {
        "Credentials": {
            "AccessKeyId": issued.access_key_id,
            "SecretAccessKey": issued.secret_access_key,
            "SessionToken": issued.session_token,
            "Expiration": issued.expiration.isoformat(),
        },
        "AssumedRoleUser": {
            "AssumedRoleId": issued.assumed_role_id,
            "Arn": issued.assumed_role_arn,
        },
    }


def _present_session(args: argparse.Namespace, output: dict[str, Any]) -> None:
    """assume-role's output: JSON, or with --as-profile a credentials-file profile."""
    if not args.as_profile:
        _present(args, output)
        return
    credentials = output["Credentials"]
    profile = credentials_profile(
        args.as_profile,
        credentials["AccessKeyId"],
        credentials["SecretAccessKey"],
        credentials["SessionToken"],
    )
    print(f"{profile}# expires {credentials['Expiration']}")


def _put_policy(kind: str) -> Runner:
    def run(core: Core, args: argparse.Namespace) -> dict[str, str]:
        from strongroom.services.identities import put_identity_policy

        account = _account(args)
        document = args.policy_document
        arn = put_identity_policy(core, kind, account, args.name, args.policy_name, document)
        return {"Arn": arn, "PolicyName": args.policy_name}

    return run


def _list_policies(kind: str) -> Runner:
    def run(core: Core, args: argparse.Namespace) -> dict[str, list[str]]:
        from strongroom.services.identities import list_identity_policies

        account = _account(args)
        return {"PolicyNames": list_identity_policies(core, kind, account, args.name)}

    return run


def _delete_policy(kind: str) -> Runner:
    def run(core: Core, args: argparse.Namespace) -> dict[str, str]:
        from strongroom.services.identities import delete_identity_policy

        account = _account(args)
        delete_identity_policy(core, kind, account, args.name, args.policy_name)
        return {"Deleted": args.policy_name}

    return run


def _check_before_opening(args: argparse.Namespace) -> None:
    """What a command can check without the data directory, checked before it is opened (or
    made): a command that fails here leaves nothing behind. A policy file is read here, into
    ``args.policy_document``."""
    if getattr(args, "in_account", None) is not None:
        _account(args)
    if getattr(args, "policy_file", None) is not None:
        args.policy_document = _read_policy_file(args.policy_file)


def _with_core(args: argparse.Namespace, run: Callable[[Core, argparse.Namespace], Any]) -> int:
    """Run an admin command on the data directory's core; one that changes state between
    its intent and its event in the audit trail (``cli/admin_trail.py``)."""
    from strongroom.cli.admin_events import audited

    _check_before_opening(args)
    recorded = audited(args)
    settings = settings_from(args)
    with _core(settings) as core:
        try:
            if recorded is None:
                output = run(core, args)
            else:
                from strongroom.cli.admin_trail import run_recorded

                output = run_recorded(
                    settings, core.root_key, args, recorded, lambda: run(core, args), core.clock()
                )
        except KmsError as exc:
            raise ValueError(f"{exc.code}: {exc.message}") from None
    getattr(args, "present", _present)(args, output)
    return 0


def _present(args: argparse.Namespace, output: Any) -> None:
    if output is not None:
        print(json.dumps(output, indent=2))


@contextmanager
def _core(settings: Settings) -> Iterator[Core]:
    from strongroom.server.wiring import build_core, prepare

    prepare(settings)
    core = build_core(settings)
    try:
        yield core
    finally:
        core.store.close()


def _create_account(core: Core, args: argparse.Namespace) -> dict[str, Any]:
    from strongroom.services.identities import ensure_account

    created = ensure_account(core, args.account_id)
    return {
        "AccountId": args.account_id,
        "Created": created,
        "RootArn": f"arn:aws:iam::{args.account_id}:root",
    }


def _create_user(core: Core, args: argparse.Namespace) -> dict[str, Any]:
    from strongroom.services.identities import create_principal

    account = _account(args)
    principal = create_principal(core, account, "user", args.name)
    return {"Arn": principal.arn, "AccountId": principal.account}


def _create_role(core: Core, args: argparse.Namespace) -> dict[str, Any]:
    from strongroom.services.identities import DEFAULT_MAX_SESSION_DURATION, create_principal

    account = _account(args)
    seconds = args.max_session_duration
    principal = create_principal(core, account, "role", args.name, max_session_duration=seconds)
    return {
        "Arn": principal.arn,
        "AccountId": principal.account,
        "MaxSessionDuration": seconds or DEFAULT_MAX_SESSION_DURATION,
    }


def _list_principals(core: Core, args: argparse.Namespace) -> list[dict[str, str]]:
    with core.store.transaction() as tx:
        return [{"Arn": p.arn, "Kind": p.kind} for p in tx.identities.list_principals(None)]


def _create_access_key(core: Core, args: argparse.Namespace) -> dict[str, str]:
    from strongroom.cli.profiles import append_profile
    from strongroom.services.identities import create_access_key

    if args.as_profile is None:
        if args.credentials_file is not None:
            raise ValueError("--credentials-file needs --as-profile NAME: the profile's name")
        key = create_access_key(core, args.principal_arn)
        return {
            "AccessKeyId": key.access_key_id,
            "SecretAccessKey": key.secret_access_key,
            "PrincipalArn": key.principal.arn,
        }
    path = args.credentials_file or settings_from(args).credentials_path

    def make_key() -> tuple[str, str]:
        key = create_access_key(core, args.principal_arn)
        return key.access_key_id, key.secret_access_key

    key_id, _ = append_profile(path, args.as_profile, make_key)
    return {
        "AccessKeyId": key_id,
        "PrincipalArn": args.principal_arn,
        "Profile": args.as_profile,
        "CredentialsFile": str(path),
    }


def _list_access_keys(core: Core, args: argparse.Namespace) -> list[dict[str, str]]:
    with core.store.transaction() as tx:
        records = tx.identities.list_access_keys(args.principal)
    return [
        {"AccessKeyId": r.access_key_id, "PrincipalArn": r.principal.arn, "Status": r.status}
        for r in records
    ]


def _delete_access_key(core: Core, args: argparse.Namespace) -> dict[str, Any]:
    from strongroom.services.identities import delete_access_key

    principal = delete_access_key(core, args.access_key_id)
    return {"Deleted": args.access_key_id, "PrincipalArn": principal.arn}


def _delete_principal(kind: str) -> Runner:
    def run(core: Core, args: argparse.Namespace) -> dict[str, Any]:
        from strongroom.services.identities import delete_principal

        deleted = delete_principal(core, kind, _account(args), args.name, force=args.force)
        output: dict[str, Any] = {"Deleted": deleted.arn}
        if kind == "user":
            output["DeletedAccessKeys"] = list(deleted.access_key_ids)
        else:
            output["DeletedSessions"] = list(deleted.session_access_key_ids)
        return output

    return run
