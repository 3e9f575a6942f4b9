"""``strongroom admin`` commands that change state leave their intent and event in the audit
trail, as IAM and STS calls do in CloudTrail: no secret anywhere in the trail, ``audit
verify`` passes (with a server writing beside them and after), ``audit unmatched`` lists
nothing; a refused command leaves an event with its errorCode; a read leaves nothing; a trail
that refuses writes makes the command fail and change nothing; a change whose event cannot
be written stands, and its intent is what ``audit unmatched`` lists."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Server, run_in_process, start_server, stop_server

from ._support import ACCOUNT, audit_events, stored_files

pytestmark = pytest.mark.compat

OTHER_ACCOUNT = "444455556666"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "*"}
    ],
}
POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*"}]}


def _admin(server: Server, *args: str) -> Any:
    out = server.admin(*args).stdout
    return json.loads(out) if out.strip() else None


def _trail_bytes(server: Server) -> bytes:
    """Every file of the audit directory, compressed segments decompressed."""
    return b"".join(stored_files(server.data_dir / "audit").values())


def _trail_files(server: Server) -> set[str]:
    """The names of the audit directory's files, a segment's the same before and after the
    server compresses it (it does every minute, an admin command's once the command ends),
    without the server's own hidden ones (its housekeeping lock, a compression under way)."""
    files = (server.data_dir / "audit").rglob("*")
    return {p.name.removesuffix(".gz") for p in files if not p.name.startswith(".")}


def _by_name(records: list[dict[str, Any]], source: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if record["eventSource"] == source:
            found.setdefault(record["eventName"], []).append(record)
    return found


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    started = start_server(tmp_path / "data")
    try:
        yield started
    finally:
        stop_server(started)


def test_admin_changes_leave_iam_and_sts_events_without_secrets(
    server: Server, tmp_path: Path
) -> None:
    (tmp_path / "trust.json").write_text(json.dumps(TRUST))
    (tmp_path / "policy.json").write_text(json.dumps(POLICY))
    kms = server.client()
    kms.create_key()  # the server writes its trail beside the commands'
    _admin(server, "create-account", OTHER_ACCOUNT)
    user = _admin(server, "create-user", "auditee")["Arn"]
    key = _admin(server, "create-access-key", user)
    _admin(server, "put-user-policy", "auditee", str(tmp_path / "policy.json"))
    _admin(server, "tag-user", "auditee", "team=blue")
    _admin(server, "untag-user", "auditee", "team")
    role = _admin(server, "create-role", "auditor", "--max-session-duration", "7200")["Arn"]
    _admin(server, "update-assume-role-policy", "auditor", str(tmp_path / "trust.json"))
    _admin(server, "update-role", "auditor", "--max-session-duration", "3600")
    session = _admin(
        server,
        "assume-role",
        "--role-arn",
        role,
        "--session-name",
        "s1",
        "--duration-seconds",
        "900",
    )["Credentials"]
    profile = server.admin(
        "assume-role", "--role-arn", role, "--session-name", "s2", "--as-profile", "p"
    ).stdout
    _admin(server, "delete-access-key", key["AccessKeyId"])
    _admin(server, "delete-user", "auditee", "--force")
    _admin(server, "delete-role", "auditor", "--force")
    kms.list_keys()
    _admin(server, "quota", "set", "Cryptographic operations (RSA) request rate", "7")
    _admin(server, "fault", "set", "--operation", "Sign", "--error", "KMSInternalException",
           "--rate", "0")  # fmt: skip
    _admin(server, "fault", "clear")
    cluster = _admin(server, "hsm-cluster", "add", "--softhsm")
    credentials = tmp_path / "credentials"
    root_key = _admin(
        server, "create-access-key", f"arn:aws:iam::{ACCOUNT}:root", "--as-profile", "ops",
        "--credentials-file", str(credentials),
    )  # fmt: skip

    _, records = audit_events(server, "--intents")
    intents = [r for r in records if r.get("recordType") == "Intent"]
    events = [r for r in records if r.get("recordType") != "Intent"]
    iam = _by_name(events, "iam.amazonaws.com")
    assert set(iam) == {
        "CreateUser", "CreateAccessKey", "PutUserPolicy", "TagUser", "UntagUser", "CreateRole",
        "UpdateAssumeRolePolicy", "UpdateRole", "DeleteAccessKey", "DeleteUser", "DeleteRole",
    }  # fmt: skip
    created = iam["CreateAccessKey"][0]
    assert created["requestParameters"] == {"userName": "auditee"}
    assert created["responseElements"] == {
        "accessKey": {"AccessKeyId": key["AccessKeyId"], "Status": "Active", "UserName": "auditee"}
    }
    assert created["resources"] == [{"accountId": ACCOUNT, "type": "AWS::IAM::User", "ARN": user}]
    assert created["recipientAccountId"] == ACCOUNT
    identity = created["userIdentity"]
    assert identity["type"] == "Unknown" and identity["userName"] == _os_user()
    assert created["userAgent"].startswith("strongroom-cli/")
    assert created["userAgent"].endswith(" command/admin.create-access-key")
    assert iam["PutUserPolicy"][0]["requestParameters"] == {
        "userName": "auditee",
        "policyName": "default",
        "policyDocument": json.dumps(POLICY),
    }
    assert iam["TagUser"][0]["requestParameters"] == {
        "userName": "auditee",
        "tags": [{"Key": "team", "Value": "blue"}],
    }
    assert iam["UpdateRole"][0]["requestParameters"] == {
        "roleName": "auditor",
        "maxSessionDuration": 3600,
    }
    assert iam["DeleteUser"][0]["additionalEventData"] == {
        "force": True,
        "deletedAccessKeys": [],
    }
    [for_root] = [e for e in iam["CreateAccessKey"] if e["requestParameters"] is None]
    assert for_root["responseElements"]["accessKey"]["AccessKeyId"] == root_key["AccessKeyId"]
    assert for_root["resources"][0]["type"] == "AWS::IAM::Root"
    assert for_root["additionalEventData"] == {
        "asProfile": "ops",
        "credentialsFile": str(credentials),
    }
    sts = _by_name(events, "sts.amazonaws.com")["AssumeRole"]
    assert [e["requestParameters"]["roleSessionName"] for e in sts] == ["s1", "s2"]
    assert sts[0]["requestParameters"]["durationSeconds"] == 900
    assert sts[0]["responseElements"]["credentials"] == {
        "AccessKeyId": session["AccessKeyId"],
        "Expiration": session["Expiration"],
    }
    admin = _by_name(events, "admin.strongroom")
    assert admin["CreateAccount"][0]["requestParameters"] == {"accountId": OTHER_ACCOUNT}
    assert admin["SetFault"][0]["requestParameters"]["operation"] == "Sign"
    assert admin["ClearFaults"][0]["responseElements"] == {"cleared": 1}
    assert admin["RegisterHsmCluster"][0]["responseElements"]["clusterId"] == cluster["ClusterId"]
    assert admin["SetQuota"][0]["requestParameters"] == {
        "quotaName": "Cryptographic operations (RSA) request rate",
        "account": "*",
        "value": 7.0,
    }
    # Every intent has its event (the server's CreateKey among them).
    assert sorted(r["requestID"] for r in intents) == sorted(
        r["requestID"] for r in events if r["eventName"] != "ListKeys"
    )
    assert {e["eventName"] for e in events if e["eventSource"] == "kms.amazonaws.com"} == {
        "CreateKey",
        "ListKeys",
    }
    # No secret anywhere in the trail's bytes: not the key's, not the sessions'.
    trail = _trail_bytes(server)
    secrets = [key["SecretAccessKey"], session["SecretAccessKey"], session["SessionToken"]]
    secrets += [line.split("=", 1)[1].strip() for line in profile.splitlines()
                if line.startswith(("aws_secret_access_key", "aws_session_token"))]  # fmt: skip
    secrets += [cluster["KeyStorePassword"]]
    secrets += [line.split("=", 1)[1].strip() for line in credentials.read_text().splitlines()
                if line.startswith("aws_secret_access_key")]  # fmt: skip
    assert len(secrets) == 7
    for secret in secrets:
        assert secret.encode() not in trail

    # The trail verifies with the server writing beside the commands' segments, and after.
    verify = run_in_process(["audit", "verify", *server.storage_args()], check=False)
    assert verify.returncode == 0 and " 0 problems" in verify.stdout, verify.stdout
    stop_server(server)
    verify = run_in_process(["audit", "verify", *server.storage_args()], check=False)
    assert verify.returncode == 0 and " 0 problems" in verify.stdout, verify.stdout
    unmatched = run_in_process(
        ["audit", "unmatched", "--older-than", "0", *server.storage_args()], check=False
    )
    assert unmatched.returncode == 0, unmatched.stdout + unmatched.stderr
    assert unmatched.stdout.startswith("0 unmatched of "), unmatched.stdout


def _os_user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def test_a_refused_admin_command_leaves_its_event_with_the_error(server: Server) -> None:
    _admin(server, "create-user", "twice")
    refused = run_in_process(["admin", "create-user", "twice", *server.storage_args()], check=False)
    assert refused.returncode == 2 and "AlreadyExistsException" in refused.stderr
    _, records = audit_events(server, "--intents", "--event-name", "CreateUser")
    assert [(r.get("recordType"), r.get("errorCode")) for r in records] == [
        ("Intent", None), (None, None), ("Intent", None), (None, "AlreadyExistsException")
    ]  # fmt: skip
    assert records[2]["requestID"] == records[3]["requestID"]
    unmatched = run_in_process(
        ["audit", "unmatched", "--older-than", "0", *server.storage_args()], check=False
    )
    assert unmatched.returncode == 0, unmatched.stdout


def test_read_only_admin_commands_write_nothing_and_a_change_its_own_segment(
    server: Server,
) -> None:
    _admin(server, "create-role", "reader")
    before = _trail_files(server)
    for command in (
        ["list-principals"],
        ["list-access-keys"],
        ["get-role", "reader"],
        ["list-role-tags", "reader"],
        ["list-role-policies", "reader"],
        ["quota", "list"],
        ["fault", "list"],
        ["hsm-cluster", "list"],
    ):
        _admin(server, *command)
    assert _trail_files(server) == before
    _admin(server, "tag-role", "reader", "team=blue")  # a change: one segment, one digest
    added = _trail_files(server) - before
    assert sorted(name.rsplit(".", 2)[1:] for name in added) == [
        ["000001", "json"],
        ["000001", "log"],
    ]


@contextlib.contextmanager
def _immutable(path: Path) -> Iterator[None]:
    """``chattr +i``: nothing can be created in (or removed from) the directory, by root
    too, as on a failing device."""
    if os.geteuid() != 0:
        pytest.skip("needs root (chattr +i)")
    result = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"chattr +i not possible here: {result.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_an_admin_command_fails_and_changes_nothing_when_the_trail_refuses(
    server: Server,
) -> None:
    _admin(server, "create-user", "kept")
    audit = server.data_dir / "audit"
    with _immutable(audit):
        for command in (["create-user", "never"], ["tag-user", "kept", "team=red"]):
            result = run_in_process(["admin", *command, *server.storage_args()], check=False)
            assert result.returncode == 2, result.stdout
            assert "the audit trail in" in result.stderr, result.stderr
            assert "cannot be written" in result.stderr and "nothing was changed" in result.stderr
            assert result.stdout == ""
        principals = {p["Arn"] for p in _admin(server, "list-principals")}
        assert f"arn:aws:iam::{ACCOUNT}:user/never" not in principals
        assert _admin(server, "list-user-tags", "kept")["Tags"] == []
    verify = run_in_process(["audit", "verify", *server.storage_args()], check=False)
    assert verify.returncode == 0, verify.stdout


def test_a_command_refused_by_the_cli_leaves_a_validation_error(server: Server) -> None:
    _admin(server, "create-user", "tagged")
    refused = run_in_process(
        ["admin", "tag-user", "tagged", "no-equals-sign", *server.storage_args()], check=False
    )
    assert refused.returncode == 2 and "must be KEY=VALUE" in refused.stderr
    _, records = audit_events(server, "--event-name", "TagUser")
    assert [(r["errorCode"], r["requestParameters"]) for r in records] == [
        (
            "ValidationError",
            {"userName": "tagged", "tags": [{"Key": "no-equals-sign", "Value": ""}]},
        )
    ]


def test_a_change_whose_event_cannot_be_written_stands_and_its_intent_is_unmatched(
    server: Server,
) -> None:
    from datetime import UTC, datetime

    from strongroom.cli.admin_events import EVENTS
    from strongroom.cli.admin_trail import run_recorded
    from strongroom.cli.main import build_parser
    from strongroom.server.settings import load_settings
    from strongroom.server.wiring import build_core

    args = build_parser("admin").parse_args(
        ["admin", "create-user", "halfway", *server.storage_args()]
    )
    settings = load_settings(data_dir=server.data_dir)
    core = build_core(settings)
    audit = server.data_dir / "audit"
    before = set(audit.glob("*.log"))

    def create_then_break_the_trail() -> None:
        from strongroom.services.identities import create_principal

        create_principal(core, ACCOUNT, "user", "halfway")
        [segment] = set(audit.glob("*.log")) - before  # the command's, holding its intent
        stack.enter_context(_immutable(segment))

    done = "create-user was done, but its audit event could not be written"
    with contextlib.ExitStack() as stack, pytest.raises(ValueError, match=done):
        run_recorded(
            settings,
            core.root_key,
            args,
            EVENTS["create-user"],
            create_then_break_the_trail,
            datetime.now(UTC),
        )
    core.store.close()
    principals = {p["Arn"] for p in _admin(server, "list-principals")}
    assert f"arn:aws:iam::{ACCOUNT}:user/halfway" in principals  # the change stands
    unmatched = run_in_process(
        ["audit", "unmatched", "--older-than", "0", *server.storage_args()], check=False
    )
    assert unmatched.returncode == 1, unmatched.stdout
    assert " CreateUser " in unmatched.stdout and " halfway " in unmatched.stdout
