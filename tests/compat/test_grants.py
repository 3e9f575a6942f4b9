"""Grants through real clients: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant,
RevokeGrant; grants that give a user without any policy the use of a key within an
encryption-context constraint; grant tokens on a node that has not seen the grant yet; the
quotas; grants across accounts; child grants; the CreateGrant condition keys."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import Server, start_server, stop_server
from strongroom.storage.sql import SqlStore

from ._support import ACCOUNT, DRY_RUN, assert_kms_error, make_client, new_principal, stored_files

pytestmark = pytest.mark.compat

ROOT = f"arn:aws:iam::{ACCOUNT}:root"
IT = {"Department": "IT"}
BOUND_SECONDS = 3.0  # change_poll_seconds (0.5 s) with a wide margin for a loaded machine
NODE_B_GRANTS_PER_KEY, NODE_B_GRANTS_PER_GRANTEE = 4, 2


def _denied(who: str, action: str, arn: str) -> str:
    return (
        f"User: {who} is not authorized to perform: kms:{action} on resource: {arn} "
        f"because no identity-based policy allows the kms:{action} action"
    )


def _policy(*statements: dict[str, Any]) -> str:
    root = {
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": {"AWS": ROOT},
        "Action": "kms:*",
        "Resource": "*",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [root, *statements]})


def _grant_ids(kms: Any, key_id: str, **filters: Any) -> list[str]:
    return [g["GrantId"] for g in kms.list_grants(KeyId=key_id, **filters)["Grants"]]


def _code(call: Callable[[], Any]) -> str:
    """ "ok", or the AWS error code of the call."""
    try:
        call()
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "ok"


@pytest.fixture(scope="module")
def people(server: Any) -> dict[str, dict[str, Any]]:
    """Users of the key's account without identity policies: a grantee, a retiring principal,
    an outsider whom nothing names, and a delegator whom a key policy lets create grants."""
    roles = ("grantee", "retirer", "outsider", "delegator")
    return {role: new_principal(server, role) for role in roles}


@pytest.fixture(scope="module")
def node_b(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A second node on the session server's database that looks at the change feed once an
    hour (so it knows only what it reads itself) and has lowered grant quotas."""
    data_dir = tmp_path_factory.mktemp("node-b") / "data"
    data_dir.mkdir(mode=0o700)
    for shared in ("root.key", "credentials"):  # the nodes share the root key and the admin
        shutil.copy2(server.data_dir / shared, data_dir / shared)
    url = server.database_url or f"sqlite:///{(server.data_dir / 'strongroom.db').resolve()}"
    settings = {
        "STRONGROOM_CHANGE_POLL_SECONDS": "3600",
        "STRONGROOM_GRANTS_PER_KEY": str(NODE_B_GRANTS_PER_KEY),
        "STRONGROOM_GRANTS_PER_GRANTEE_PER_KEY": str(NODE_B_GRANTS_PER_GRANTEE),
    }
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        node = start_server(data_dir, url)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    yield node
    stop_server(node)


def _on(node: Server, person: dict[str, Any]) -> Any:
    return make_client(node.endpoint, person["AccessKeyId"], person["SecretAccessKey"])


def test_grant_gives_a_user_without_policy_the_use_of_the_key_within_its_constraint(
    kms: Any, key: dict[str, Any], people: dict[str, dict[str, Any]]
) -> None:
    grantee, arn = people["grantee"], key["Arn"]
    user = grantee["client"]
    assert_kms_error(
        "AccessDeniedException",
        user.encrypt,
        KeyId=arn,
        Plaintext=b"x",
        EncryptionContext=IT,
        message=_denied(grantee["arn"], "Encrypt", arn),
    )
    created = kms.create_grant(
        KeyId=key["KeyId"],
        GranteePrincipal=grantee["arn"],
        Operations=["Encrypt", "Decrypt"],
        Constraints={"EncryptionContextSubset": IT},
    )
    assert len(created["GrantId"]) == 64 and created["GrantToken"]
    context = {**IT, "Project": "alpha"}
    blob = user.encrypt(KeyId=arn, Plaintext=b"granted", EncryptionContext=context)[
        "CiphertextBlob"
    ]
    assert user.decrypt(CiphertextBlob=blob, EncryptionContext=context)["Plaintext"] == b"granted"
    # Constraint keys compare without case, values with it (GrantConstraints doc).
    assert user.encrypt(KeyId=arn, Plaintext=b"x", EncryptionContext={"department": "IT"})
    for other in ({"Department": "HR"}, {"Department": "it"}, {"Project": "alpha"}, None):
        extra = {} if other is None else {"EncryptionContext": other}
        assert_kms_error(
            "AccessDeniedException",
            user.encrypt,
            KeyId=arn,
            Plaintext=b"x",
            message=_denied(grantee["arn"], "Encrypt", arn),
            **extra,
        )
    for call, kwargs in (
        (user.generate_data_key, {"KeySpec": "AES_256", "EncryptionContext": IT}),
        (user.describe_key, {}),
        (user.list_grants, {}),
    ):
        assert_kms_error("AccessDeniedException", call, KeyId=arn, **kwargs)
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "Enabled"


def test_grant_without_constraint_allows_describe_key_and_asymmetric_operations(
    kms: Any, people: dict[str, dict[str, Any]]
) -> None:
    grantee = people["grantee"]
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    kms.create_grant(
        KeyId=key["Arn"],
        GranteePrincipal=grantee["arn"],
        Operations=["Sign", "Verify", "DescribeKey", "GetPublicKey"],
    )
    user = grantee["client"]
    assert user.describe_key(KeyId=key["Arn"])["KeyMetadata"]["KeyUsage"] == "SIGN_VERIFY"
    signature = user.sign(KeyId=key["Arn"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")[
        "Signature"
    ]
    verified = user.verify(
        KeyId=key["Arn"], Message=b"m", Signature=signature, SigningAlgorithm="ECDSA_SHA_256"
    )
    assert verified["SignatureValid"] is True
    assert user.get_public_key(KeyId=key["Arn"])["PublicKey"]


def test_constraint_does_not_apply_to_describe_key_and_retire_grant(
    kms: Any, key: dict[str, Any], people: dict[str, dict[str, Any]]
) -> None:
    grantee = people["grantee"]
    grant = kms.create_grant(
        KeyId=key["KeyId"],
        GranteePrincipal=grantee["arn"],
        Operations=["Decrypt", "DescribeKey", "RetireGrant"],
        Constraints={"EncryptionContextEquals": IT},
    )
    user = grantee["client"]
    assert user.describe_key(KeyId=key["Arn"])["KeyMetadata"]["Arn"] == key["Arn"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p", EncryptionContext=IT)["CiphertextBlob"]
    assert user.decrypt(CiphertextBlob=blob, EncryptionContext=IT)["Plaintext"] == b"p"
    both = {**IT, "Project": "alpha"}
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p", EncryptionContext=both)["CiphertextBlob"]
    assert_kms_error(
        "AccessDeniedException", user.decrypt, CiphertextBlob=blob, EncryptionContext=both
    )
    user.retire_grant(KeyId=key["Arn"], GrantId=grant["GrantId"])
    assert _grant_ids(kms, key["KeyId"]) == []


def test_grant_token_makes_a_new_grant_usable_on_a_node_that_has_not_seen_it(
    kms: Any, node_b: Server, key: dict[str, Any], people: dict[str, dict[str, Any]]
) -> None:
    grantee, arn = people["grantee"], key["Arn"]
    on_b = _on(node_b, grantee)
    assert_kms_error("AccessDeniedException", on_b.encrypt, KeyId=arn, Plaintext=b"x")
    token = kms.create_grant(KeyId=arn, GranteePrincipal=grantee["arn"], Operations=["Encrypt"])[
        "GrantToken"
    ]
    if node_b.database_url is None:
        # Node B polls the change feed once an hour: without the token the grant is not
        # there yet. (On PostgreSQL it is told of the grant at once, by NOTIFY: the token
        # only covers the moment before.)
        assert_kms_error("AccessDeniedException", on_b.encrypt, KeyId=arn, Plaintext=b"x")
    assert on_b.encrypt(KeyId=arn, Plaintext=b"x", GrantTokens=[token])["KeyId"] == arn
    assert grantee["client"].encrypt(KeyId=arn, Plaintext=b"x")["KeyId"] == arn
    # Retired here: node B, which polls only hourly but is told of changes at once on
    # PostgreSQL (NOTIFY), refuses the token within moments; on SQLite it never cached the
    # grant and looks the token up, finding none.
    kms.retire_grant(GrantToken=token)
    deadline = time.monotonic() + 1.0
    while True:
        try:
            on_b.encrypt(KeyId=arn, Plaintext=b"x", GrantTokens=[token])
        except ClientError as refused:
            assert refused.response["Error"]["Code"] == "AccessDeniedException"
            break
        assert time.monotonic() < deadline, "node B still honours a retired grant after 1 s"
    assert_kms_error(
        "InvalidGrantTokenException",
        on_b.encrypt,
        KeyId=arn,
        Plaintext=b"x",
        GrantTokens=["not-a-grant-token"],
    )


def test_retired_or_revoked_grant_stops_at_once_here_and_within_a_poll_elsewhere(
    kms: Any, node_b: Server, key: dict[str, Any], people: dict[str, dict[str, Any]]
) -> None:
    grantee, arn = people["grantee"], key["Arn"]
    here, on_b = grantee["client"], _on(node_b, grantee)
    grant = kms.create_grant(KeyId=arn, GranteePrincipal=grantee["arn"], Operations=["Encrypt"])
    assert here.encrypt(KeyId=arn, Plaintext=b"x")["KeyId"] == arn  # cached with the grant
    node_b.client().revoke_grant(KeyId=arn, GrantId=grant["GrantId"])
    assert_kms_error("AccessDeniedException", on_b.encrypt, KeyId=arn, Plaintext=b"x")
    started = time.monotonic()
    while _code(lambda: here.encrypt(KeyId=arn, Plaintext=b"x")) != "AccessDeniedException":
        assert time.monotonic() - started < BOUND_SECONDS, "the revocation did not arrive"
        time.sleep(0.1)


def test_retire_by_the_retiring_principal_the_grantee_and_the_account(
    kms: Any, key: dict[str, Any], people: dict[str, dict[str, Any]]
) -> None:
    grantee, retirer, outsider = people["grantee"], people["retirer"], people["outsider"]
    arn = key["Arn"]

    def grant(*operations: str, retiring: str | None = None) -> dict[str, Any]:
        extra = {} if retiring is None else {"RetiringPrincipal": retiring}
        return kms.create_grant(  # type: ignore[no-any-return]
            KeyId=arn, GranteePrincipal=grantee["arn"], Operations=list(operations), **extra
        )

    by_retirer = grant("Encrypt", retiring=retirer["arn"])
    by_grantee = grant("Encrypt", "RetireGrant")
    by_nobody = grant("Decrypt")
    for who in (grantee, outsider):  # neither retiring principal nor allowed by the grant
        assert_kms_error(
            "AccessDeniedException",
            who["client"].retire_grant,
            KeyId=arn,
            GrantId=by_retirer["GrantId"],
            message=_denied(who["arn"], "RetireGrant", arn),
        )
    assert_kms_error(
        "AccessDeniedException", outsider["client"].retire_grant, GrantToken=by_nobody["GrantToken"]
    )
    retirer["client"].retire_grant(KeyId=arn, GrantId=by_retirer["GrantId"])
    grantee["client"].retire_grant(GrantToken=by_grantee["GrantToken"])
    assert _grant_ids(kms, arn) == [by_nobody["GrantId"]]
    assert_kms_error("AccessDeniedException", grantee["client"].encrypt, KeyId=arn, Plaintext=b"x")
    # The key's account: its admin user, whose IAM policy allows kms:*, retires any grant.
    kms.retire_grant(KeyId=key["KeyId"], GrantId=by_nobody["GrantId"])
    assert _grant_ids(kms, arn) == []
    assert_kms_error("NotFoundException", kms.retire_grant, KeyId=arn, GrantId=by_nobody["GrantId"])
    assert_kms_error("NotFoundException", kms.retire_grant, GrantToken=by_nobody["GrantToken"])
    assert_kms_error("InvalidGrantTokenException", kms.retire_grant, GrantToken="bm90IG91cnM=")
    assert_kms_error("InvalidGrantIdException", kms.retire_grant, KeyId=arn, GrantId="abc")
    assert_kms_error("ValidationException", kms.retire_grant, KeyId=arn)
    dry = grant("Encrypt")
    assert_kms_error(
        "DryRunOperationException",
        kms.retire_grant,
        GrantToken=dry["GrantToken"],
        DryRun=True,
        message=DRY_RUN,
    )
    assert _grant_ids(kms, arn) == [dry["GrantId"]]
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "Enabled"


def test_revoke_needs_kms_revoke_grant_and_takes_effect_at_once(
    kms: Any, key: dict[str, Any], people: dict[str, dict[str, Any]]
) -> None:
    grantee, arn = people["grantee"], key["Arn"]
    grant = kms.create_grant(
        KeyId=arn,
        GranteePrincipal=grantee["arn"],
        Operations=["Encrypt", "RetireGrant"],
        RetiringPrincipal=grantee["arn"],
    )
    assert grantee["client"].encrypt(KeyId=arn, Plaintext=b"x")["KeyId"] == arn
    assert_kms_error(
        "AccessDeniedException",
        grantee["client"].revoke_grant,
        KeyId=arn,
        GrantId=grant["GrantId"],
        message=_denied(grantee["arn"], "RevokeGrant", arn),
    )
    assert_kms_error(
        "DryRunOperationException",
        kms.revoke_grant,
        KeyId=arn,
        GrantId=grant["GrantId"],
        DryRun=True,
    )
    assert _grant_ids(kms, arn) == [grant["GrantId"]]
    kms.revoke_grant(KeyId=key["KeyId"], GrantId=grant["GrantId"])
    assert_kms_error("AccessDeniedException", grantee["client"].encrypt, KeyId=arn, Plaintext=b"x")
    assert _grant_ids(kms, arn) == []
    assert_kms_error("NotFoundException", kms.revoke_grant, KeyId=arn, GrantId=grant["GrantId"])
    assert_kms_error("InvalidGrantIdException", kms.revoke_grant, KeyId=arn, GrantId="g" * 64)
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "Enabled"


def test_name_makes_create_grant_idempotent(
    kms: Any, key: dict[str, Any], people: dict[str, dict[str, Any]]
) -> None:
    grantee, arn = people["grantee"], key["Arn"]
    request = {
        "KeyId": arn,
        "GranteePrincipal": grantee["arn"],
        "Operations": ["Encrypt", "Decrypt"],
        "Constraints": {"EncryptionContextSubset": IT},
        "Name": "app-1:decrypt/it",
    }
    first = kms.create_grant(**request)
    again = kms.create_grant(**{**request, "Operations": ["Decrypt", "Encrypt"]})
    assert again["GrantId"] == first["GrantId"] and again["GrantToken"] != first["GrantToken"]
    # Every token of one grant names it.
    kms.retire_grant(GrantToken=again["GrantToken"])
    assert_kms_error("NotFoundException", kms.retire_grant, GrantToken=first["GrantToken"])
    first = kms.create_grant(**request)
    other = kms.create_grant(**{**request, "Constraints": {"EncryptionContextEquals": IT}})
    assert other["GrantId"] != first["GrantId"]
    assert sorted(_grant_ids(kms, arn)) == sorted([first["GrantId"], other["GrantId"]])
    elsewhere = kms.create_key()["KeyMetadata"]
    on_other_key = kms.create_grant(**{**request, "KeyId": elsewhere["Arn"]})
    assert on_other_key["GrantId"] != first["GrantId"]


def test_list_grants_returns_aws_fields_filters_and_pages(
    kms: Any, key: dict[str, Any], people: dict[str, dict[str, Any]]
) -> None:
    grantee, retirer, arn = people["grantee"], people["retirer"], key["Arn"]
    named = kms.create_grant(
        KeyId=arn,
        GranteePrincipal=grantee["arn"],
        RetiringPrincipal=retirer["arn"],
        Operations=["Decrypt", "GenerateDataKey"],
        Constraints={"EncryptionContextEquals": IT},
        Name="listed",
    )["GrantId"]
    others = [
        kms.create_grant(KeyId=arn, GranteePrincipal=retirer["arn"], Operations=["Encrypt"])[
            "GrantId"
        ]
        for _ in range(4)
    ]
    entry = kms.list_grants(KeyId=key["KeyId"], GrantId=named)["Grants"]
    assert len(entry) == 1
    listed = entry[0]
    assert listed.pop("CreationDate").year >= 2025
    assert listed == {
        "KeyId": arn,
        "GrantId": named,
        "Name": "listed",
        "GranteePrincipal": grantee["arn"],
        "RetiringPrincipal": retirer["arn"],
        "IssuingAccount": ROOT,
        "Operations": ["Decrypt", "GenerateDataKey"],
        "Constraints": {"EncryptionContextEquals": IT},
    }
    assert sorted(_grant_ids(kms, arn, GranteePrincipal=retirer["arn"])) == sorted(others)
    pages, marker = [], None
    while True:
        page = kms.list_grants(KeyId=arn, Limit=2, **({"Marker": marker} if marker else {}))
        pages.append([g["GrantId"] for g in page["Grants"]])
        if not page["Truncated"]:
            assert "NextMarker" not in page
            break
        marker = page["NextMarker"]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sorted(g for p in pages for g in p) == sorted([named, *others])
    assert_kms_error("InvalidMarkerException", kms.list_grants, KeyId=arn, Marker="bogus")
    assert_kms_error("InvalidGrantIdException", kms.list_grants, KeyId=arn, GrantId="x")
    assert kms.list_grants(KeyId=arn, GrantId="0" * 64)["Grants"] == []
    assert_kms_error("NotFoundException", kms.list_grants, KeyId="alias/no-such-alias")


def test_list_retirable_grants_lists_across_keys_for_a_principal_of_the_account(
    kms: Any, people: dict[str, dict[str, Any]], other_account: dict[str, Any]
) -> None:
    retirer, outsider = people["retirer"], people["outsider"]
    keys = [kms.create_key()["KeyMetadata"] for _ in range(2)]
    made = [
        kms.create_grant(
            KeyId=k["Arn"],
            GranteePrincipal=retirer["arn"],
            RetiringPrincipal=outsider["arn"],
            Operations=["Encrypt"],
        )["GrantId"]
        for k in keys
        for _ in range(2)
    ]
    listed, marker = [], None
    while True:
        extra = {"Marker": marker} if marker else {}
        page = kms.list_retirable_grants(RetiringPrincipal=outsider["arn"], Limit=3, **extra)
        listed += page["Grants"]
        if not page["Truncated"]:
            break
        marker = page["NextMarker"]
    mine = [g for g in listed if g["GrantId"] in made]
    assert sorted(g["GrantId"] for g in mine) == sorted(made)
    assert {g["KeyId"] for g in mine} == {k["Arn"] for k in keys}
    assert all(g["RetiringPrincipal"] == outsider["arn"] for g in listed)
    # kms:ListRetirableGrants is an IAM permission; a principal of another account is refused.
    assert_kms_error(
        "AccessDeniedException",
        outsider["client"].list_retirable_grants,
        RetiringPrincipal=outsider["arn"],
    )
    assert_kms_error(
        "AccessDeniedException", kms.list_retirable_grants, RetiringPrincipal=other_account["arn"]
    )
    assert_kms_error("InvalidArnException", kms.list_retirable_grants, RetiringPrincipal="bob")


@pytest.mark.parametrize(
    ("case", "error", "message"),
    [
        ("encrypt on a signing key", "ValidationException", None),
        ("generate data key on an RSA key", "ValidationException", None),
        (
            "only CreateGrant",
            "ValidationException",
            "Grants must not contain only the CreateGrant operation.",
        ),
        ("two constraints", "ValidationException", "More than one constraint supplied"),
        ("constraint on an HMAC key", "ValidationException", None),
        ("nine constraint pairs", "ValidationException", None),
        ("grantee not an ARN", "InvalidArnException", None),
        ("alias as key id", "NotFoundException", None),
        (
            "alias ARN as key id",
            "InvalidArnException",
            "Key Aliases are not supported for this operation.",
        ),
        ("bad grant token", "InvalidGrantTokenException", None),
        ("bad name", "ValidationException", None),
        ("service principal", "UnsupportedOperationException", None),
        ("dry run", "DryRunOperationException", DRY_RUN),
    ],
)
def test_create_grant_refuses_what_aws_refuses_and_changes_nothing(
    kms: Any,
    key_of: Any,
    people: dict[str, dict[str, Any]],
    case: str,
    error: str,
    message: str | None,
) -> None:
    grantee = people["grantee"]["arn"]
    key = kms.create_key()["KeyMetadata"]
    alias = f"alias/grant-{key['KeyId']}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    request: dict[str, Any] = {
        "KeyId": key["Arn"],
        "GranteePrincipal": grantee,
        "Operations": ["Encrypt"],
    }
    signing = key_of("ECC_NIST_P256", "SIGN_VERIFY")["Arn"]
    changes: dict[str, dict[str, Any]] = {
        "encrypt on a signing key": {"KeyId": signing},
        "generate data key on an RSA key": {
            "KeyId": key_of("RSA_2048", "ENCRYPT_DECRYPT")["Arn"],
            "Operations": ["GenerateDataKey"],
        },
        "only CreateGrant": {"Operations": ["CreateGrant"]},
        "two constraints": {
            "Constraints": {"EncryptionContextSubset": IT, "EncryptionContextEquals": IT}
        },
        "constraint on an HMAC key": {
            "KeyId": key_of("HMAC_256", "GENERATE_VERIFY_MAC")["Arn"],
            "Operations": ["GenerateMac"],
            "Constraints": {"EncryptionContextSubset": IT},
        },
        "nine constraint pairs": {
            "Constraints": {"EncryptionContextSubset": {f"k{i}": "v" for i in range(9)}}
        },
        "grantee not an ARN": {"GranteePrincipal": "alice"},
        "alias as key id": {"KeyId": alias},
        "alias ARN as key id": {"KeyId": key["Arn"].replace(f"key/{key['KeyId']}", alias)},
        "bad grant token": {"GrantTokens": ["bm90IG91cnM="]},
        "bad name": {"Name": "spaces are not allowed"},
        "service principal": {"GranteePrincipal": None, "GranteeServicePrincipal": "s3.aws.com"},
        "dry run": {"DryRun": True},
    }
    request.update(changes[case])
    request = {k: v for k, v in request.items() if v is not None}
    before = {k: _grant_ids(kms, k) for k in {key["Arn"], signing}}
    assert_kms_error(error, kms.create_grant, message=message, **request)
    assert {k: _grant_ids(kms, k) for k in before} == before


def test_create_grant_follows_the_key_state(kms: Any, people: dict[str, dict[str, Any]]) -> None:
    grantee = people["grantee"]["arn"]
    key = kms.create_key()["KeyMetadata"]
    grant = kms.create_grant(KeyId=key["Arn"], GranteePrincipal=grantee, Operations=["Encrypt"])
    kms.disable_key(KeyId=key["KeyId"])
    assert_kms_error(
        "DisabledException",
        kms.create_grant,
        KeyId=key["Arn"],
        GranteePrincipal=grantee,
        Operations=["Encrypt"],
        message=f"{key['Arn']} is disabled.",
    )
    assert _grant_ids(kms, key["Arn"]) == [grant["GrantId"]]
    kms.revoke_grant(KeyId=key["Arn"], GrantId=grant["GrantId"])
    assert kms.describe_key(KeyId=key["Arn"])["KeyMetadata"]["KeyState"] == "Disabled"


def test_quotas_per_key_and_per_grantee(node_b: Server, people: dict[str, dict[str, Any]]) -> None:
    kms = node_b.client()
    key = kms.create_key()["KeyMetadata"]
    arn = key["Arn"]

    def grant(who: str, **extra: Any) -> dict[str, Any]:
        return kms.create_grant(  # type: ignore[no-any-return]
            KeyId=arn, GranteePrincipal=people[who]["arn"], Operations=["Encrypt"], **extra
        )

    grant("grantee", Name="retry")
    grant("grantee")
    response = assert_kms_error("LimitExceededException", grant, who="grantee")
    assert people["grantee"]["arn"] in response["Error"]["Message"]
    grant("retirer")
    last = grant("retirer")
    response = assert_kms_error("LimitExceededException", grant, who="outsider")
    assert f"at most {NODE_B_GRANTS_PER_KEY} grants" in response["Error"]["Message"]
    assert len(_grant_ids(kms, arn)) == NODE_B_GRANTS_PER_KEY
    # A retry of a grant that exists is not a new grant.
    assert grant("grantee", Name="retry")["GrantId"] in _grant_ids(kms, arn)
    kms.revoke_grant(KeyId=arn, GrantId=last["GrantId"])
    grant("outsider")
    assert len(_grant_ids(kms, arn)) == NODE_B_GRANTS_PER_KEY


def test_grantee_in_another_account_uses_the_key_by_its_arn(
    kms: Any, key: dict[str, Any], other_account: dict[str, Any]
) -> None:
    bob, arn = other_account["client"], key["Arn"]
    assert_kms_error("AccessDeniedException", bob.encrypt, KeyId=arn, Plaintext=b"x")
    grant = kms.create_grant(
        KeyId=arn, GranteePrincipal=other_account["arn"], Operations=["Encrypt", "RetireGrant"]
    )
    assert bob.encrypt(KeyId=arn, Plaintext=b"x")["KeyId"] == arn
    assert_kms_error("NotFoundException", bob.encrypt, KeyId=key["KeyId"], Plaintext=b"x")
    assert_kms_error("AccessDeniedException", bob.list_grants, KeyId=arn)
    bob.retire_grant(KeyId=arn, GrantId=grant["GrantId"])
    assert_kms_error("AccessDeniedException", bob.encrypt, KeyId=arn, Plaintext=b"x")


def test_other_account_creates_lists_and_revokes_grants_its_key_policy_allows(
    kms: Any, people: dict[str, dict[str, Any]], other_account: dict[str, Any]
) -> None:
    bob = other_account["client"]
    outsider_account = {
        "Sid": "Grants by the other account",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{other_account['account']}:root"},
        "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
        "Resource": "*",
    }
    key = kms.create_key(Policy=_policy(outsider_account))["KeyMetadata"]
    grant = bob.create_grant(
        KeyId=key["Arn"], GranteePrincipal=people["grantee"]["arn"], Operations=["Decrypt"]
    )
    (listed,) = bob.list_grants(KeyId=key["Arn"])["Grants"]
    assert listed["IssuingAccount"] == f"arn:aws:iam::{other_account['account']}:root"
    blob = kms.encrypt(KeyId=key["Arn"], Plaintext=b"x")["CiphertextBlob"]
    assert people["grantee"]["client"].decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    bob.revoke_grant(KeyId=key["Arn"], GrantId=grant["GrantId"])
    assert _grant_ids(kms, key["Arn"]) == []
    assert_kms_error("AccessDeniedException", bob.describe_key, KeyId=key["Arn"])


def test_explicit_deny_in_the_key_policy_beats_a_grant(
    kms: Any, people: dict[str, dict[str, Any]]
) -> None:
    grantee = people["grantee"]
    deny = {
        "Effect": "Deny",
        "Principal": {"AWS": grantee["arn"]},
        "Action": "kms:Decrypt",
        "Resource": "*",
    }
    key = kms.create_key(Policy=_policy(deny))["KeyMetadata"]
    kms.create_grant(
        KeyId=key["Arn"], GranteePrincipal=grantee["arn"], Operations=["Encrypt", "Decrypt"]
    )
    blob = grantee["client"].encrypt(KeyId=key["Arn"], Plaintext=b"x")["CiphertextBlob"]
    assert_kms_error(
        "AccessDeniedException",
        grantee["client"].decrypt,
        CiphertextBlob=blob,
        message=(
            f"User: {grantee['arn']} is not authorized to perform: kms:Decrypt on resource: "
            f"{key['Arn']} with an explicit deny in a resource-based policy"
        ),
    )


def test_grantee_with_create_grant_makes_only_narrower_child_grants(
    kms: Any, key: dict[str, Any], people: dict[str, dict[str, Any]]
) -> None:
    grantee, retirer, arn = people["grantee"], people["retirer"], key["Arn"]
    kms.create_grant(
        KeyId=arn,
        GranteePrincipal=grantee["arn"],
        Operations=["Decrypt", "Encrypt", "CreateGrant"],
        Constraints={"EncryptionContextSubset": IT},
    )
    create = grantee["client"].create_grant
    child = {"KeyId": arn, "GranteePrincipal": retirer["arn"], "Operations": ["Decrypt"]}
    narrower = (
        {"Constraints": {"EncryptionContextSubset": {**IT, "Project": "alpha"}}},
        {"Constraints": {"EncryptionContextEquals": IT}},
        {"Constraints": {"EncryptionContextEquals": {"department": "IT", "Stage": "test"}}},
    )
    for extra in narrower:
        create(**child, **extra)
    wider = (
        {},
        {"Constraints": {"EncryptionContextSubset": {"Project": "alpha"}}},
        {"Constraints": {"EncryptionContextSubset": IT}, "Operations": ["GenerateDataKey"]},
    )
    for extra in wider:
        assert_kms_error("AccessDeniedException", create, **{**child, **extra})
    assert len(_grant_ids(kms, arn, GranteePrincipal=retirer["arn"])) == len(narrower)


def test_create_grant_condition_keys(kms: Any, people: dict[str, dict[str, Any]]) -> None:
    delegator, grantee, retirer = people["delegator"], people["grantee"], people["retirer"]
    allow = {
        "Effect": "Allow",
        "Principal": {"AWS": delegator["arn"]},
        "Action": "kms:CreateGrant",
        "Resource": "*",
        "Condition": {
            "ForAllValues:StringEquals": {"kms:GrantOperations": ["Encrypt", "Decrypt"]},
            "StringEquals": {
                "kms:GranteePrincipal": grantee["arn"],
                "kms:RetiringPrincipal": retirer["arn"],
                "kms:GrantConstraintType": "EncryptionContextSubset",
                "kms:EncryptionContext:Department": "IT",
            },
            "Bool": {"kms:GrantIsForAWSResource": "false"},
        },
    }
    only_for_aws = {
        "Effect": "Allow",
        "Principal": {"AWS": delegator["arn"]},
        "Action": "kms:ListGrants",
        "Resource": "*",
        "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
    }
    key = kms.create_key(Policy=_policy(allow, only_for_aws))["KeyMetadata"]
    good = {
        "KeyId": key["Arn"],
        "GranteePrincipal": grantee["arn"],
        "RetiringPrincipal": retirer["arn"],
        "Operations": ["Decrypt"],
        "Constraints": {"EncryptionContextSubset": IT},
    }
    create = delegator["client"].create_grant
    create(**good)
    for change in (
        {"Operations": ["Decrypt", "GenerateDataKey"]},
        {"GranteePrincipal": retirer["arn"]},
        {"RetiringPrincipal": grantee["arn"]},
        {"Constraints": {"EncryptionContextEquals": IT}},
        {"Constraints": {"EncryptionContextSubset": {"Department": "HR"}}},
    ):
        assert_kms_error("AccessDeniedException", create, **{**good, **change})
    assert_kms_error("AccessDeniedException", delegator["client"].list_grants, KeyId=key["Arn"])
    assert len(_grant_ids(kms, key["Arn"])) == 1


def test_grants_are_deleted_with_their_key(
    server: Server, kms: Any, people: dict[str, dict[str, Any]]
) -> None:
    key = kms.create_key()["KeyMetadata"]
    grant = kms.create_grant(
        KeyId=key["Arn"], GranteePrincipal=people["grantee"]["arn"], Operations=["Encrypt"]
    )
    url = server.database_url or f"sqlite:///{(server.data_dir / 'strongroom.db').resolve()}"
    store = SqlStore(url)
    try:
        with store.transaction() as tx:
            stored = tx.keys.get(key["Arn"])
            assert stored is not None
            assert [g.grant_id for g in tx.grants.list(key["Arn"])] == [grant["GrantId"]]
            tx.keys.delete(stored)
        with store.transaction() as tx:
            assert tx.grants.get(grant["GrantId"]) is None
            assert tx.grants.list(key["Arn"]) == []
    finally:
        store.close()


def test_grant_tokens_are_left_out_of_the_audit_trail(
    server: Server, kms: Any, key: dict[str, Any], people: dict[str, dict[str, Any]]
) -> None:
    grantee = people["grantee"]
    grant = kms.create_grant(
        KeyId=key["Arn"], GranteePrincipal=grantee["arn"], Operations=["Encrypt"]
    )
    token = grant["GrantToken"]
    grantee["client"].encrypt(KeyId=key["Arn"], Plaintext=b"x", GrantTokens=[token])
    kms.retire_grant(GrantToken=token)
    trail = b"".join(stored_files(Path(server.data_dir, "audit")).values())
    assert grant["GrantId"].encode() in trail
    assert token.encode() not in trail
