"""AWS managed keys (``alias/aws/<service>``) through boto3: made on first use, one per
account and Region, usable only through their service, never changed by the customer.

Each test uses its own service's alias in a fresh account, so what one test creates no
other test sees."""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import start_server, stop_server

from ._support import ALL_KMS, REGION, assert_kms_error, make_client, new_principal, unique_alias

pytestmark = pytest.mark.compat

RESERVED = "aliases that begin with alias/aws/ are reserved for AWS managed keys."


def _fresh_account(server: Any) -> dict[str, Any]:
    """A user with kms:* in its identity policy, in an account no other test uses."""
    account = "9" + "".join(random.choices("0123456789", k=11))
    server.admin("create-account", account)
    return new_principal(server, "owner", account=account, policy=ALL_KMS)


@pytest.fixture(scope="module")
def owner(server: Any) -> dict[str, Any]:
    return _fresh_account(server)


@pytest.fixture(scope="module")
def neighbour(server: Any) -> dict[str, Any]:
    return _fresh_account(server)


def _all(call: Callable[..., Any], items: str, **kwargs: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for _ in range(1000):
        page = call(**kwargs)
        found += page[items]
        if not page["Truncated"]:
            return found
        kwargs["Marker"] = page["NextMarker"]
    raise AssertionError(f"{items} never stopped")


def _aliases(client: Any, limit: int = 100) -> dict[str, dict[str, Any]]:
    entries = _all(client.list_aliases, "Aliases", Limit=limit)
    names = [a["AliasName"] for a in entries]
    assert names == sorted(set(names)), names
    return {a["AliasName"]: a for a in entries}


def _denied(who: dict[str, Any], action: str, resource: str) -> str:
    """AWS's text when no key policy statement allows ``action`` (IAM "Access denied")."""
    return (
        f"User: {who['arn']} is not authorized to perform: kms:{action} on resource: "
        f"{resource} because no resource-based policy allows the kms:{action} action"
    )


# The key policy of the AWS managed key for S3, written out as GetKeyPolicy returns it
# (Id auto-s3-2; AWS KMS Developer Guide, kms:CallerAccount / kms:ViaService).
S3_POLICY = """{
  "Version" : "2012-10-17",
  "Id" : "auto-s3-2",
  "Statement" : [ {
    "Sid" : "Allow access through S3 for all principals in the account that are authorized to use S3",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "*"
    },
    "Action" : [ "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey" ],
    "Resource" : "*",
    "Condition" : {
      "StringEquals" : {
        "kms:CallerAccount" : "ACCOUNT",
        "kms:ViaService" : "s3.us-east-1.amazonaws.com"
      }
    }
  }, {
    "Sid" : "Allow direct access to key metadata to the account",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::ACCOUNT:root"
    },
    "Action" : [ "kms:Describe*", "kms:Get*", "kms:List*" ],
    "Resource" : "*"
  } ]
}"""  # noqa: E501


def test_describe_key_of_predefined_alias_creates_the_aws_managed_key(
    owner: dict[str, Any],
) -> None:
    kms, account = owner["client"], owner["account"]
    keys_before = {k["KeyId"] for k in _all(kms.list_keys, "Keys")}
    meta = kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]
    assert meta["KeyManager"] == "AWS"
    assert meta["AWSAccountId"] == account
    assert meta["Arn"] == f"arn:aws:kms:{REGION}:{account}:key/{meta['KeyId']}"
    assert meta["Description"] == (
        "Default key that protects my S3 objects when no other key is defined"
    )
    assert (meta["KeyState"], meta["Enabled"]) == ("Enabled", True)
    assert (meta["KeySpec"], meta["KeyUsage"], meta["Origin"]) == (
        "SYMMETRIC_DEFAULT",
        "ENCRYPT_DECRYPT",
        "AWS_KMS",
    )
    assert meta["MultiRegion"] is False
    assert "DeletionDate" not in meta
    # The same key from then on, by alias name, alias ARN, key id and key ARN.
    alias_arn = f"arn:aws:kms:{REGION}:{account}:alias/aws/s3"
    for ref in ("alias/aws/s3", alias_arn, meta["KeyId"], meta["Arn"]):
        assert kms.describe_key(KeyId=ref)["KeyMetadata"] == meta
    assert {k["KeyId"] for k in _all(kms.list_keys, "Keys")} == keys_before | {meta["KeyId"]}
    [entry] = kms.list_aliases(KeyId=meta["KeyId"])["Aliases"]
    assert (entry["AliasName"], entry["AliasArn"], entry["TargetKeyId"]) == (
        "alias/aws/s3",
        alias_arn,
        meta["KeyId"],
    )


def test_aws_managed_key_has_the_aws_key_policy(owner: dict[str, Any]) -> None:
    kms, account = owner["client"], owner["account"]
    key_id = kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]["KeyId"]
    policy = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    assert policy == S3_POLICY.replace("ACCOUNT", account)
    assert kms.list_key_policies(KeyId=key_id)["PolicyNames"] == ["default"]


def test_list_aliases_shows_predefined_alias_without_key_until_first_use(
    owner: dict[str, Any],
) -> None:
    kms, account = owner["client"], owner["account"]
    alias_arn = f"arn:aws:kms:{REGION}:{account}:alias/aws/ebs"
    before = _aliases(kms)
    assert before["alias/aws/ebs"] == {"AliasName": "alias/aws/ebs", "AliasArn": alias_arn}
    assert {"alias/aws/dynamodb", "alias/aws/lambda", "alias/aws/rds"} <= set(before)
    assert _aliases(kms, limit=1) == before  # pages of one name each, none twice
    meta = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]
    assert meta["Description"] == (
        "Default key that protects my EBS volumes when no other key is defined"
    )
    after = _aliases(kms)["alias/aws/ebs"]
    assert after["TargetKeyId"] == meta["KeyId"]
    assert after["AliasArn"] == alias_arn
    assert {"CreationDate", "LastUpdatedDate"} <= set(after)
    assert set(_aliases(kms)) == set(before)
    assert _aliases(kms, limit=2) == _aliases(kms)


def test_aws_managed_key_refuses_direct_use(owner: dict[str, Any]) -> None:
    kms = owner["client"]
    meta = kms.describe_key(KeyId="alias/aws/lambda")["KeyMetadata"]
    arn = meta["Arn"]
    for ref in ("alias/aws/lambda", meta["KeyId"]):
        assert_kms_error(
            "AccessDeniedException",
            kms.encrypt,
            KeyId=ref,
            Plaintext=b"x",
            message=_denied(owner, "Encrypt", arn),
        )
    assert_kms_error(
        "AccessDeniedException",
        kms.generate_data_key,
        KeyId=arn,
        KeySpec="AES_256",
        message=_denied(owner, "GenerateDataKey", arn),
    )
    mine = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=mine, Plaintext=b"x")["CiphertextBlob"]
    assert_kms_error(
        "AccessDeniedException",
        kms.re_encrypt,
        CiphertextBlob=blob,
        DestinationKeyId="alias/aws/lambda",
        message=_denied(owner, "ReEncryptTo", arn),
    )


def test_first_use_by_an_operation_other_than_describe_key_creates_the_key(
    owner: dict[str, Any],
) -> None:
    kms = owner["client"]
    assert "TargetKeyId" not in _aliases(kms)["alias/aws/kafka"]
    assert_kms_error("AccessDeniedException", kms.encrypt, KeyId="alias/aws/kafka", Plaintext=b"x")
    key_id = _aliases(kms)["alias/aws/kafka"]["TargetKeyId"]
    assert kms.describe_key(KeyId="alias/aws/kafka")["KeyMetadata"]["KeyId"] == key_id


def _refusals(kms: Any, key: dict[str, Any], other_alias: str) -> dict[str, Any]:
    """Every change a customer could try on an AWS managed key: (call, params)."""
    k = {"KeyId": key["KeyId"]}
    tags = {"Tags": [{"TagKey": "a", "TagValue": "b"}]}
    return {
        "PutKeyPolicy": (kms.put_key_policy, {**k, "PolicyName": "default", "Policy": "{}"}),
        "ScheduleKeyDeletion": (kms.schedule_key_deletion, {**k, "PendingWindowInDays": 7}),
        "CancelKeyDeletion": (kms.cancel_key_deletion, k),
        "EnableKey": (kms.enable_key, k),
        "DisableKey": (kms.disable_key, k),
        "UpdateKeyDescription": (kms.update_key_description, {**k, "Description": "mine"}),
        "TagResource": (kms.tag_resource, {**k, **tags}),
        "UntagResource": (kms.untag_resource, {**k, "TagKeys": ["a"]}),
        "EnableKeyRotation": (kms.enable_key_rotation, {**k, "RotationPeriodInDays": 90}),
        "DisableKeyRotation": (kms.disable_key_rotation, k),
        "RotateKeyOnDemand": (kms.rotate_key_on_demand, k),
        "CreateAlias": (
            kms.create_alias,
            {"AliasName": unique_alias("managed"), "TargetKeyId": key["KeyId"]},
        ),
        "UpdateAlias": (
            kms.update_alias,
            {"AliasName": other_alias, "TargetKeyId": key["KeyId"]},
        ),
    }


def test_every_change_to_an_aws_managed_key_is_refused(owner: dict[str, Any]) -> None:
    kms = owner["client"]
    key = kms.describe_key(KeyId="alias/aws/rds")["KeyMetadata"]
    policy = kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"]
    mine = kms.create_key()["KeyMetadata"]
    other_alias = unique_alias("mine")
    kms.create_alias(AliasName=other_alias, TargetKeyId=mine["KeyId"])
    for action, (call, params) in _refusals(kms, key, other_alias).items():
        assert_kms_error(
            "AccessDeniedException",
            call,
            message=_denied(owner, action, key["Arn"]),
            **params,
        )
    # The alias itself: its name is AWS's.
    for call, params in (
        (kms.delete_alias, {"AliasName": "alias/aws/rds"}),
        (kms.update_alias, {"AliasName": "alias/aws/rds", "TargetKeyId": mine["KeyId"]}),
        (kms.create_alias, {"AliasName": "alias/aws/rds", "TargetKeyId": mine["KeyId"]}),
    ):
        assert_kms_error(
            "NotAuthorizedException", call, message=f"alias/aws/rds: {RESERVED}", **params
        )
    assert kms.describe_key(KeyId="alias/aws/rds")["KeyMetadata"] == key
    assert kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"] == policy
    assert kms.list_resource_tags(KeyId=key["KeyId"])["Tags"] == []
    # Rotated every year, which no one can change.
    status = kms.get_key_rotation_status(KeyId=key["KeyId"])
    assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 365
    created = key["CreationDate"]
    assert status["NextRotationDate"] - created == timedelta(days=365)
    assert [a["AliasName"] for a in kms.list_aliases(KeyId=key["KeyId"])["Aliases"]] == [
        "alias/aws/rds"
    ]
    assert kms.list_aliases(KeyId=mine["KeyId"])["Aliases"][0]["AliasName"] == other_alias


def test_unknown_aws_alias_is_not_found(owner: dict[str, Any]) -> None:
    kms, account = owner["client"], owner["account"]
    keys_before = _all(kms.list_keys, "Keys")
    for ref in ("alias/aws/nope", f"arn:aws:kms:{REGION}:{account}:alias/aws/nope"):
        assert_kms_error(
            "NotFoundException",
            kms.describe_key,
            KeyId=ref,
            message=f"Alias arn:aws:kms:{REGION}:{account}:alias/aws/nope is not found.",
        )
    assert "alias/aws/nope" not in _aliases(kms)
    assert _all(kms.list_keys, "Keys") == keys_before


def test_each_account_gets_its_own_aws_managed_key(
    owner: dict[str, Any], neighbour: dict[str, Any]
) -> None:
    mine = owner["client"].describe_key(KeyId="alias/aws/ssm")["KeyMetadata"]
    theirs_arn = f"arn:aws:kms:{REGION}:{neighbour['account']}:alias/aws/ssm"
    # Naming another account's predefined alias creates nothing there.
    assert_kms_error(
        "NotFoundException",
        owner["client"].describe_key,
        KeyId=theirs_arn,
        message=f"Alias {theirs_arn} is not found.",
    )
    assert "TargetKeyId" not in _aliases(neighbour["client"])["alias/aws/ssm"]
    theirs = neighbour["client"].describe_key(KeyId="alias/aws/ssm")["KeyMetadata"]
    assert theirs["KeyId"] != mine["KeyId"]
    assert (mine["AWSAccountId"], theirs["AWSAccountId"]) == (
        owner["account"],
        neighbour["account"],
    )
    policy = neighbour["client"].get_key_policy(KeyId=theirs["KeyId"], PolicyName="default")
    assert f'"kms:CallerAccount" : "{neighbour["account"]}"' in policy["Policy"]
    assert owner["account"] not in policy["Policy"]


def test_aws_managed_key_is_made_per_region(server: Any, owner: dict[str, Any]) -> None:
    eu = make_client(server.endpoint, owner["AccessKeyId"], owner["SecretAccessKey"], "eu-west-1")
    us = owner["client"].describe_key(KeyId="alias/aws/sqs")["KeyMetadata"]
    meta = eu.describe_key(KeyId="alias/aws/sqs")["KeyMetadata"]
    assert meta["KeyId"] != us["KeyId"]
    assert meta["Arn"].startswith("arn:aws:kms:eu-west-1:")
    policy = eu.get_key_policy(KeyId=meta["KeyId"], PolicyName="default")["Policy"]
    assert '"kms:ViaService" : "sqs.eu-west-1.amazonaws.com"' in policy


def _first_use_by_many(clients: list[Any], alias: str) -> set[str]:
    with ThreadPoolExecutor(len(clients)) as pool:
        found = pool.map(lambda c: c.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"], clients)
        return set(found)


def test_concurrent_first_use_creates_one_key(server: Any, owner: dict[str, Any]) -> None:
    clients = [
        make_client(server.endpoint, owner["AccessKeyId"], owner["SecretAccessKey"])
        for _ in range(8)
    ]
    [key_id] = _first_use_by_many(clients, "alias/aws/dynamodb")
    managed = [
        k["KeyId"]
        for k in _all(owner["client"].list_keys, "Keys")
        if owner["client"].describe_key(KeyId=k["KeyId"])["KeyMetadata"]["Description"]
        == "Default key that protects my DynamoDB data when no other key is defined"
    ]
    assert managed == [key_id]


def test_worker_processes_make_one_key_between_them(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", None, "--workers", "2")
    try:
        clients = [
            make_client(server.endpoint, server.access_key_id, server.secret_access_key)
            for _ in range(8)
        ]
        [key_id] = _first_use_by_many(clients, "alias/aws/secretsmanager")
        assert {k["KeyId"] for k in _all(clients[0].list_keys, "Keys")} == {key_id}
        for client in clients:  # every process answers with the same key from now on
            assert (
                client.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]["KeyId"]
                == key_id
            )
    finally:
        stop_server(server)
