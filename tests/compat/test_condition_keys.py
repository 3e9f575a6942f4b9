"""The condition keys AWS KMS defines for each operation, through real clients: request
parameters (kms:EncryptionAlgorithm, kms:SigningAlgorithm, kms:MessageType,
kms:MacAlgorithm, kms:DataKeyPairSpec, kms:ReEncryptOnSameKey,
kms:ScheduleKeyDeletionPendingWindowInDays, kms:BypassPolicyLockoutSafetyCheck,
aws:RequestTag/<k>, aws:TagKeys) and the key's tags and aliases (aws:ResourceTag/<k>,
kms:ResourceAliases), whose changes take effect on the next request, in every process."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import start_server, stop_server

from ._support import (
    ACCOUNT,
    REGION,
    assert_kms_error,
    make_client,
    new_principal,
    unique_alias,
)

pytestmark = pytest.mark.compat

BOUND_SECONDS = 3.0  # change_poll_seconds (0.5 s) with a wide margin for a loaded machine


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _identity(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


ADMIN = f"arn:aws:iam::{ACCOUNT}:user/admin"  # the server's first user (tests/conftest.py)
ROOT = {
    "Sid": "Enable IAM User Permissions",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "kms:*",
    "Resource": "*",
}


def _allow(principal: str, actions: list[str], condition: dict[str, Any] | None = None) -> Any:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": actions,
        "Resource": "*",
    }
    if condition is not None:
        statement["Condition"] = condition
    return statement


def _no_identity_policy(principal: str, action: str, resource: str) -> str:
    # A user whose key policy statement does not apply falls back to the account's
    # "Enable IAM User Permissions", and no identity policy of its allows the action.
    return (
        f"User: {principal} is not authorized to perform: kms:{action} on resource: {resource} "
        f"because no identity-based policy allows the kms:{action} action"
    )


def _explicit_deny(principal: str, action: str, resource: str, where: str) -> str:
    return (
        f"User: {principal} is not authorized to perform: kms:{action} on resource: {resource} "
        f"with an explicit deny in {where}"
    )


def _state(kms: Any, key_id: str) -> str:
    return str(kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"])


def _tags(kms: Any, key_id: str) -> dict[str, str]:
    found = kms.list_resource_tags(KeyId=key_id)["Tags"]
    return {t["TagKey"]: t["TagValue"] for t in found}


def test_encrypt_and_decrypt_only_with_symmetric_default(server: Any, kms: Any) -> None:
    user = new_principal(server, "alg")
    condition = {"StringEquals": {"kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}}
    policy = _policy(ROOT, _allow(user["arn"], ["kms:Encrypt", "kms:Decrypt"], condition))
    arn = kms.create_key(Policy=policy)["KeyMetadata"]["Arn"]
    client = user["client"]
    # No EncryptionAlgorithm in the request: the operation's, SYMMETRIC_DEFAULT, counts.
    blob = client.encrypt(KeyId=arn, Plaintext=b"data")["CiphertextBlob"]
    client.encrypt(KeyId=arn, Plaintext=b"data", EncryptionAlgorithm="SYMMETRIC_DEFAULT")
    assert client.decrypt(CiphertextBlob=blob)["Plaintext"] == b"data"
    for call, kwargs, action in (
        (client.encrypt, {"KeyId": arn, "Plaintext": b"data"}, "Encrypt"),
        (client.decrypt, {"CiphertextBlob": blob, "KeyId": arn}, "Decrypt"),
    ):
        assert_kms_error(
            "AccessDeniedException",
            call,
            message=_no_identity_policy(user["arn"], action, arn),
            EncryptionAlgorithm="RSAES_OAEP_SHA_256",
            **kwargs,
        )
    # The administrator (not bound by the condition) gets the algorithm check instead.
    assert_kms_error(
        "InvalidKeyUsageException",
        kms.encrypt,
        KeyId=arn,
        Plaintext=b"data",
        EncryptionAlgorithm="RSAES_OAEP_SHA_256",
    )
    assert _state(kms, arn) == "Enabled"


def test_sign_and_verify_only_with_one_algorithm_and_raw_messages(server: Any, kms: Any) -> None:
    user = new_principal(server, "signer")
    condition = {
        "StringEquals": {"kms:SigningAlgorithm": "RSASSA_PSS_SHA_256", "kms:MessageType": "RAW"}
    }
    policy = _policy(ROOT, _allow(user["arn"], ["kms:Sign", "kms:Verify"], condition))
    arn = kms.create_key(Policy=policy, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"][
        "Arn"
    ]
    client, pss = user["client"], "RSASSA_PSS_SHA_256"
    signature = client.sign(KeyId=arn, Message=b"m", SigningAlgorithm=pss)["Signature"]
    assert client.verify(
        KeyId=arn, Message=b"m", MessageType="RAW", Signature=signature, SigningAlgorithm=pss
    )["SignatureValid"]
    digest = hashlib.sha256(b"m").digest()
    refused: list[tuple[Callable[..., Any], dict[str, Any], str]] = [
        (client.sign, {"SigningAlgorithm": "RSASSA_PKCS1_V1_5_SHA_256"}, "Sign"),
        (
            client.sign,
            {"SigningAlgorithm": pss, "Message": digest, "MessageType": "DIGEST"},
            "Sign",
        ),
        (
            client.verify,
            {"SigningAlgorithm": "RSASSA_PKCS1_V1_5_SHA_256", "Signature": signature},
            "Verify",
        ),
    ]
    for call, kwargs, action in refused:
        assert_kms_error(
            "AccessDeniedException",
            call,
            message=_no_identity_policy(user["arn"], action, arn),
            **{"KeyId": arn, "Message": b"m", **kwargs},
        )
    # Unbound by the condition, the administrator signs the digest.
    kms.sign(KeyId=arn, Message=digest, MessageType="DIGEST", SigningAlgorithm=pss)


def test_generate_mac_only_with_a_named_algorithm(server: Any, kms: Any) -> None:
    user = new_principal(server, "mac")
    condition = {"StringEquals": {"kms:MacAlgorithm": "HMAC_SHA_512"}}
    policy = _policy(ROOT, _allow(user["arn"], ["kms:GenerateMac"], condition))
    allowed = kms.create_key(Policy=policy, KeySpec="HMAC_512", KeyUsage="GENERATE_VERIFY_MAC")
    refused = kms.create_key(Policy=policy, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    client = user["client"]
    mac = client.generate_mac(
        KeyId=allowed["KeyMetadata"]["Arn"], Message=b"m", MacAlgorithm="HMAC_SHA_512"
    )
    assert len(mac["Mac"]) == 64
    arn = refused["KeyMetadata"]["Arn"]
    assert_kms_error(
        "AccessDeniedException",
        client.generate_mac,
        message=_no_identity_policy(user["arn"], "GenerateMac", arn),
        KeyId=arn,
        Message=b"m",
        MacAlgorithm="HMAC_SHA_256",
    )


def test_data_key_pairs_only_of_rsa_specs(server: Any, kms: Any) -> None:
    user = new_principal(server, "pairs")
    condition = {"StringLike": {"kms:DataKeyPairSpec": "RSA*"}}
    actions = ["kms:GenerateDataKeyPair", "kms:GenerateDataKeyPairWithoutPlaintext"]
    arn = kms.create_key(Policy=_policy(ROOT, _allow(user["arn"], actions, condition)))[
        "KeyMetadata"
    ]["Arn"]
    client = user["client"]
    pair = client.generate_data_key_pair_without_plaintext(KeyId=arn, KeyPairSpec="RSA_2048")
    assert pair["KeyPairSpec"] == "RSA_2048"
    assert_kms_error(
        "AccessDeniedException",
        client.generate_data_key_pair,
        message=_no_identity_policy(user["arn"], "GenerateDataKeyPair", arn),
        KeyId=arn,
        KeyPairSpec="ECC_NIST_P256",
    )


def test_re_encrypt_only_on_the_same_key(server: Any, kms: Any) -> None:
    user = new_principal(server, "reenc")
    condition = {"Bool": {"kms:ReEncryptOnSameKey": "true"}}
    statements = (
        _allow(user["arn"], ["kms:Encrypt"]),
        _allow(user["arn"], ["kms:ReEncrypt*"], condition),
    )
    policy = _policy(ROOT, *statements)
    source = kms.create_key(Policy=policy)["KeyMetadata"]["Arn"]
    other = kms.create_key(Policy=policy)["KeyMetadata"]["Arn"]
    client = user["client"]
    blob = client.encrypt(KeyId=source, Plaintext=b"data")["CiphertextBlob"]
    again = client.re_encrypt(CiphertextBlob=blob, DestinationKeyId=source)
    assert (again["SourceKeyId"], again["KeyId"]) == (source, source)
    assert_kms_error(
        "AccessDeniedException",
        client.re_encrypt,
        message=_no_identity_policy(user["arn"], "ReEncryptFrom", source),
        CiphertextBlob=blob,
        DestinationKeyId=other,
    )


def test_create_key_only_with_a_team_request_tag(server: Any) -> None:
    identity = _identity(
        {
            "Effect": "Allow",
            # Tags on CreateKey need kms:TagResource too, under the same conditions.
            "Action": ["kms:CreateKey", "kms:TagResource"],
            "Resource": "*",
            "Condition": {
                "Null": {"aws:RequestTag/team": "false"},
                "ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env"]},
            },
        },
        {"Effect": "Allow", "Action": ["kms:DescribeKey", "kms:ListResourceTags"], "Resource": "*"},
    )
    user = new_principal(server, "creator", policy=identity)
    client = user["client"]
    for tags in ([], [{"TagKey": "env", "TagValue": "dev"}]):
        assert_kms_error(
            "AccessDeniedException",
            client.create_key,
            message=_no_identity_policy(user["arn"], "CreateKey", "*"),
            Tags=tags,
        )
    assert_kms_error(
        "AccessDeniedException",
        client.create_key,
        Tags=[{"TagKey": "team", "TagValue": "a"}, {"TagKey": "owner", "TagValue": "b"}],
    )
    made = client.create_key(Tags=[{"TagKey": "team", "TagValue": "blue"}])["KeyMetadata"]
    assert _state(client, made["KeyId"]) == "Enabled"
    assert _tags(client, made["KeyId"]) == {"team": "blue"}


def _key_count(kms: Any) -> int:
    count, page = 0, {"Limit": 1000}
    while True:
        reply = kms.list_keys(**page)
        count += len(reply["Keys"])
        if not reply.get("Truncated"):
            return count
        page = {"Limit": 1000, "Marker": reply["NextMarker"]}


def _tagging_denied(principal: str, why: str) -> re.Pattern[str]:
    """AWS's text for kms:TagResource refused on the ARN of the key CreateKey would make."""
    resource = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/[0-9a-f-]{{36}}"
    return re.compile(
        re.escape(f"User: {principal} is not authorized to perform: kms:TagResource on ")
        + f"resource: {resource} "
        + re.escape(why)
    )


def test_create_key_with_tags_needs_tag_resource_from_an_identity_policy(
    server: Any, kms: Any
) -> None:
    tags = [{"TagKey": "team", "TagValue": "blue"}]
    creator = new_principal(
        server,
        "creator",
        policy=_identity({"Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*"}),
    )
    # A key policy cannot grant it: the key (and its policy) does not exist yet.
    generous = _policy(ROOT, _allow(creator["arn"], ["kms:*"]))
    before = _key_count(kms)
    for extra in ({}, {"Policy": generous}):
        response = assert_kms_error(
            "AccessDeniedException", creator["client"].create_key, Tags=tags, **extra
        )
        why = "because no identity-based policy allows the kms:TagResource action"
        assert _tagging_denied(creator["arn"], why).fullmatch(response["Error"]["Message"])
    assert _key_count(kms) == before  # nothing was made
    creator["client"].create_key(Description="no tags, no kms:TagResource")
    assert _key_count(kms) == before + 1

    # An explicit Deny in an identity policy wins over kms:*.
    denied = new_principal(
        server,
        "nottagging",
        policy=_identity(
            {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "kms:TagResource", "Resource": "*"},
        ),
    )
    response = assert_kms_error("AccessDeniedException", denied["client"].create_key, Tags=tags)
    why = "with an explicit deny in an identity-based policy"
    assert _tagging_denied(denied["arn"], why).fullmatch(response["Error"]["Message"])
    assert _key_count(kms) == before + 1


def test_create_key_tags_are_the_request_tags_of_its_tag_resource_check(
    server: Any, kms: Any
) -> None:
    create = {
        "Effect": "Allow",
        "Action": ["kms:CreateKey", "kms:ListResourceTags"],
        "Resource": "*",
    }
    existing = kms.create_key(Description="some other key")["KeyMetadata"]["Arn"]
    # The permission must cover every key of the account and Region: one naming a single
    # (existing) key does not.
    narrow = new_principal(
        server,
        "narrow",
        policy=_identity(
            create, {"Effect": "Allow", "Action": "kms:TagResource", "Resource": existing}
        ),
    )
    assert_kms_error(
        "AccessDeniedException",
        narrow["client"].create_key,
        Tags=[{"TagKey": "team", "TagValue": "blue"}],
    )
    tagging = {
        "Effect": "Allow",
        "Action": "kms:TagResource",
        "Resource": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/*",
        "Condition": {
            "StringEquals": {"aws:RequestTag/team": "blue"},
            "ForAllValues:StringEquals": {"aws:TagKeys": ["team"]},
        },
    }
    user = new_principal(server, "blueteam", policy=_identity(create, tagging))
    client = user["client"]
    before = _key_count(kms)
    for tags in (
        [{"TagKey": "team", "TagValue": "red"}],
        [{"TagKey": "team", "TagValue": "blue"}, {"TagKey": "cost", "TagValue": "1"}],
    ):
        response = assert_kms_error("AccessDeniedException", client.create_key, Tags=tags)
        why = "because no identity-based policy allows the kms:TagResource action"
        assert _tagging_denied(user["arn"], why).fullmatch(response["Error"]["Message"])
    assert _key_count(kms) == before
    made = client.create_key(Tags=[{"TagKey": "team", "TagValue": "blue"}])["KeyMetadata"]
    assert _tags(client, made["KeyId"]) == {"team": "blue"}


def test_tag_resource_refused_when_a_tag_key_is_forbidden(kms: Any) -> None:
    deny = {
        "Sid": "No forbidden tag",
        "Effect": "Deny",
        "Principal": "*",
        "Action": ["kms:TagResource", "kms:UntagResource"],
        "Resource": "*",
        "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": "forbidden"}},
    }
    arn = kms.create_key(Policy=_policy(ROOT, deny))["KeyMetadata"]["Arn"]
    kms.tag_resource(KeyId=arn, Tags=[{"TagKey": "ok", "TagValue": "1"}])
    assert _tags(kms, arn) == {"ok": "1"}
    assert_kms_error(
        "AccessDeniedException",
        kms.tag_resource,
        message=_explicit_deny(ADMIN, "TagResource", arn, "a resource-based policy"),
        KeyId=arn,
        Tags=[{"TagKey": "ok", "TagValue": "2"}, {"TagKey": "forbidden", "TagValue": "x"}],
    )
    assert _tags(kms, arn) == {"ok": "1"}
    assert_kms_error(
        "AccessDeniedException",
        kms.untag_resource,
        message=_explicit_deny(ADMIN, "UntagResource", arn, "a resource-based policy"),
        KeyId=arn,
        TagKeys=["forbidden"],
    )
    kms.untag_resource(KeyId=arn, TagKeys=["ok"])
    assert _tags(kms, arn) == {}
    assert _state(kms, arn) == "Enabled"


def test_access_follows_the_key_tags(server: Any, kms: Any) -> None:
    identity = _identity(
        {
            "Effect": "Allow",
            "Action": ["kms:Encrypt", "kms:DescribeKey"],
            "Resource": f"arn:aws:kms:*:{ACCOUNT}:key/*",
            "Condition": {"StringEquals": {"aws:ResourceTag/Project": "alpha"}},
        }
    )
    user = new_principal(server, "tagged", policy=identity)
    key = kms.create_key(Tags=[{"TagKey": "project", "TagValue": "beta"}])["KeyMetadata"]
    arn, client = key["Arn"], user["client"]
    denied = _no_identity_policy(user["arn"], "Encrypt", arn)
    assert_kms_error(
        "AccessDeniedException", client.encrypt, message=denied, KeyId=arn, Plaintext=b"x"
    )
    kms.tag_resource(KeyId=arn, Tags=[{"TagKey": "project", "TagValue": "alpha"}])
    assert _tags(kms, arn) == {"project": "alpha"}
    assert client.encrypt(KeyId=arn, Plaintext=b"x")["KeyId"] == arn
    assert _state(client, arn) == "Enabled"
    kms.untag_resource(KeyId=arn, TagKeys=["project"])
    assert _tags(kms, arn) == {}
    assert_kms_error(
        "AccessDeniedException", client.encrypt, message=denied, KeyId=arn, Plaintext=b"x"
    )


def test_access_follows_the_key_aliases(server: Any, kms: Any) -> None:
    prefix = unique_alias("team")
    identity = _identity(
        {
            "Effect": "Allow",
            "Action": ["kms:Encrypt", "kms:DescribeKey"],
            "Resource": "*",
            "Condition": {"ForAnyValue:StringLike": {"kms:ResourceAliases": f"{prefix}-*"}},
        }
    )
    user = new_principal(server, "aliased", policy=identity)
    first, second = (kms.create_key()["KeyMetadata"]["Arn"] for _ in range(2))
    client, alias = user["client"], f"{prefix}-1"

    def outcome(arn: str) -> str:
        try:
            return str(client.encrypt(KeyId=arn, Plaintext=b"x")["KeyId"])
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])

    assert (outcome(first), outcome(second)) == ("AccessDeniedException",) * 2
    kms.create_alias(AliasName=alias, TargetKeyId=first)
    assert (outcome(first), outcome(second)) == (first, "AccessDeniedException")
    # By key ARN, the alias a condition names counts (kms:ResourceAliases, not RequestAlias).
    assert client.describe_key(KeyId=first)["KeyMetadata"]["Arn"] == first
    kms.update_alias(AliasName=alias, TargetKeyId=second)
    assert (outcome(first), outcome(second)) == ("AccessDeniedException", second)
    kms.delete_alias(AliasName=alias)
    assert (outcome(first), outcome(second)) == ("AccessDeniedException",) * 2


def test_schedule_key_deletion_only_with_a_window_of_20_days_or_more(server: Any, kms: Any) -> None:
    user = new_principal(server, "deleter")
    condition = {"NumericGreaterThanEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": "20"}}
    policy = _policy(
        ROOT,
        _allow(user["arn"], ["kms:DescribeKey", "kms:CancelKeyDeletion"]),
        _allow(user["arn"], ["kms:ScheduleKeyDeletion"], condition),
    )
    arn = kms.create_key(Policy=policy)["KeyMetadata"]["Arn"]
    client = user["client"]
    for days in (7, 19):
        assert_kms_error(
            "AccessDeniedException",
            client.schedule_key_deletion,
            message=_no_identity_policy(user["arn"], "ScheduleKeyDeletion", arn),
            KeyId=arn,
            PendingWindowInDays=days,
        )
        assert _state(client, arn) == "Enabled"
    scheduled = client.schedule_key_deletion(KeyId=arn, PendingWindowInDays=20)
    assert scheduled["PendingWindowInDays"] == 20
    assert _state(client, arn) == "PendingDeletion"
    client.cancel_key_deletion(KeyId=arn)
    assert _state(client, arn) == "Disabled"
    # No window in the request: the default, 30 days, is what the condition sees.
    assert client.schedule_key_deletion(KeyId=arn)["PendingWindowInDays"] == 30
    assert _state(client, arn) == "PendingDeletion"
    client.cancel_key_deletion(KeyId=arn)


def test_put_key_policy_bypassing_the_lockout_check_is_denied(kms: Any) -> None:
    deny = {
        "Sid": "Never bypass",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "kms:PutKeyPolicy",
        "Resource": "*",
        "Condition": {"Bool": {"kms:BypassPolicyLockoutSafetyCheck": "true"}},
    }
    original = _policy(ROOT, deny)
    arn = kms.create_key(Policy=original)["KeyMetadata"]["Arn"]
    replacement = _policy({**ROOT, "Sid": "Replaced"}, deny)
    assert_kms_error(
        "AccessDeniedException",
        kms.put_key_policy,
        message=_explicit_deny(ADMIN, "PutKeyPolicy", arn, "a resource-based policy"),
        KeyId=arn,
        PolicyName="default",
        Policy=replacement,
        BypassPolicyLockoutSafetyCheck=True,
    )
    assert kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"] == original
    kms.put_key_policy(
        KeyId=arn, PolicyName="default", Policy=replacement, BypassPolicyLockoutSafetyCheck=False
    )
    assert kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"] == replacement
    kms.put_key_policy(KeyId=arn, PolicyName="default", Policy=original)
    assert kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"] == original
    assert _state(kms, arn) == "Enabled"


def test_create_key_bypassing_the_lockout_check_is_denied(server: Any) -> None:
    identity = _identity(
        {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
        {
            "Effect": "Deny",
            "Action": "kms:CreateKey",
            "Resource": "*",
            "Condition": {"Bool": {"kms:BypassPolicyLockoutSafetyCheck": "true"}},
        },
    )
    user = new_principal(server, "bypasser", policy=identity)
    client, policy = user["client"], _policy(ROOT)
    assert_kms_error(
        "AccessDeniedException",
        client.create_key,
        message=_explicit_deny(user["arn"], "CreateKey", "*", "an identity-based policy"),
        Policy=policy,
        BypassPolicyLockoutSafetyCheck=True,
    )
    made = client.create_key(Policy=policy)["KeyMetadata"]
    assert _state(client, made["Arn"]) == "Enabled"


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Any]:
    server = start_server(tmp_path / "data", None, "--workers", "2")
    yield server
    stop_server(server)


def _converges(check: Callable[[], bool]) -> None:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > BOUND_SECONDS:
            raise AssertionError(f"not consistent {BOUND_SECONDS}s after the change")
        time.sleep(0.1)


def test_tag_and_alias_changes_reach_every_worker_process(workers: Any) -> None:
    """Each process keeps a key's tags and aliases once a condition read them; a change made
    through one process reaches the others through the change feed."""
    prefix = unique_alias("ops")
    identity = _identity(
        {
            "Effect": "Allow",
            "Action": "kms:Encrypt",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:ResourceTag/stage": "live"},
                "ForAnyValue:StringLike": {"kms:ResourceAliases": f"{prefix}-*"},
            },
        }
    )
    user = new_principal(workers, "worker", policy=identity)
    admin = workers.client()
    arn = admin.create_key(Tags=[{"TagKey": "stage", "TagValue": "live"}])["KeyMetadata"]["Arn"]
    admin.create_alias(AliasName=f"{prefix}-1", TargetKeyId=arn)
    clients = [
        make_client(workers.endpoint, user["AccessKeyId"], user["SecretAccessKey"])
        for _ in range(16)  # separate connections, spread over both worker processes
    ]

    def outcomes() -> set[str]:
        found = set()
        for client in clients:
            try:
                found.add(str(client.encrypt(KeyId=arn, Plaintext=b"x")["KeyId"]))
            except ClientError as exc:
                found.add(str(exc.response["Error"]["Code"]))
        return found

    assert outcomes() == {arn}  # every process has read (and kept) the tags and aliases
    admin.tag_resource(KeyId=arn, Tags=[{"TagKey": "stage", "TagValue": "retired"}])
    _converges(lambda: outcomes() == {"AccessDeniedException"})
    admin.tag_resource(KeyId=arn, Tags=[{"TagKey": "stage", "TagValue": "live"}])
    _converges(lambda: outcomes() == {arn})
    admin.delete_alias(AliasName=f"{prefix}-1")
    _converges(lambda: outcomes() == {"AccessDeniedException"})
    assert admin.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "Enabled"
