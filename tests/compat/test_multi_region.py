"""Multi-Region keys through boto3 clients of two Regions against one server: CreateKey
MultiRegion, ReplicateKey, UpdatePrimaryRegion, DescribeKey's MultiRegionConfiguration,
ciphertexts, signatures and MACs across Regions, per-Region policy, tags, description and
aliases, deletion of primaries and replicas (the job driven by a clock the test holds),
condition keys and error paths."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from strongroom.crypto.blob import parse_blob
from strongroom.services.deletion import delete_due_keys
from strongroom.services.multiregion import complete_replication
from strongroom.services.rotation import rotate_due_keys

from ._in_process import FakeClock, InProcess, in_process
from ._support import (
    ACCOUNT,
    ALL_KMS,
    OTHER_REGION,
    REGION,
    assert_kms_error,
    make_client,
    new_principal,
    unique_alias,
)

pytestmark = pytest.mark.compat

THIRD_REGION = "ap-southeast-2"
MRK_ID = re.compile(r"^mrk-[0-9a-f]{32}$")


def _arn(region: str, key_id: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:kms:{region}:{account}:key/{key_id}"


def _meta(kms: Any, key_id: str) -> dict[str, Any]:
    return kms.describe_key(KeyId=key_id)["KeyMetadata"]  # type: ignore[no-any-return]


def _config(primary: str, key_id: str, *replicas: str, kind: str) -> dict[str, Any]:
    """The MultiRegionConfiguration AWS shows for a key of this set."""
    return {
        "MultiRegionKeyType": kind,
        "PrimaryKey": {"Arn": _arn(primary, key_id), "Region": primary},
        "ReplicaKeys": [{"Arn": _arn(r, key_id), "Region": r} for r in sorted(replicas)],
    }


def _wait_enabled(kms: Any, key_id: str, seconds: float = 10.0) -> dict[str, Any]:
    """Poll DescribeKey until the replica leaves Creating, as an AWS client must."""
    deadline = time.monotonic() + seconds
    while True:
        meta = _meta(kms, key_id)
        if meta["KeyState"] != "Creating":
            return meta
        if time.monotonic() > deadline:
            raise AssertionError(f"{key_id} is still Creating after {seconds}s")
        time.sleep(0.05)


def _replicate(kms: Any, eu_kms: Any, key_id: str, **kwargs: Any) -> dict[str, Any]:
    """ReplicateKey into eu-west-1 and wait for the replica: its KeyMetadata once Enabled."""
    kms.replicate_key(KeyId=key_id, ReplicaRegion=OTHER_REGION, **kwargs)
    return _wait_enabled(eu_kms, key_id)


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


ROOT = {
    "Sid": "Enable IAM User Permissions",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "kms:*",
    "Resource": "*",
}


@pytest.fixture
def mrk(kms: Any) -> dict[str, Any]:
    """A fresh multi-Region symmetric primary key in us-east-1."""
    return kms.create_key(MultiRegion=True, Description="primary")[  # type: ignore[no-any-return]
        "KeyMetadata"
    ]


@pytest.fixture
def replicated(kms: Any, eu_kms: Any, mrk: dict[str, Any]) -> str:
    """The key id of a fresh primary in us-east-1 with an Enabled replica in eu-west-1."""
    _replicate(kms, eu_kms, mrk["KeyId"])
    return str(mrk["KeyId"])


# -- CreateKey ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "usage", "algorithms"),
    [
        ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "EncryptionAlgorithms"),
        ("RSA_2048", "ENCRYPT_DECRYPT", "EncryptionAlgorithms"),
        ("ECC_NIST_P256", "SIGN_VERIFY", "SigningAlgorithms"),
        ("ECC_NIST_EDWARDS25519", "SIGN_VERIFY", "SigningAlgorithms"),
        ("ML_DSA_44", "SIGN_VERIFY", "SigningAlgorithms"),
        ("ECC_NIST_P384", "KEY_AGREEMENT", "KeyAgreementAlgorithms"),
        ("HMAC_256", "GENERATE_VERIFY_MAC", "MacAlgorithms"),
        ("ML_KEM_768", "ENCAPSULATE_DECAPSULATE", "EncapsulationAlgorithms"),
    ],
)
def test_create_key_multi_region_makes_a_primary_with_an_mrk_id(
    kms: Any, spec: str, usage: str, algorithms: str
) -> None:
    meta = kms.create_key(MultiRegion=True, KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
    key_id = meta["KeyId"]
    assert MRK_ID.match(key_id), key_id
    assert meta["Arn"] == _arn(REGION, key_id)
    assert meta["MultiRegion"] is True
    assert meta["KeySpec"] == spec and meta["KeyUsage"] == usage and algorithms in meta
    assert meta["MultiRegionConfiguration"] == _config(REGION, key_id, kind="PRIMARY")
    described = _meta(kms, key_id)
    assert described["MultiRegionConfiguration"] == meta["MultiRegionConfiguration"]
    assert described["KeyState"] == "Enabled"


def test_single_region_key_has_no_multi_region_configuration(kms: Any) -> None:
    meta = kms.create_key(MultiRegion=False)["KeyMetadata"]
    assert not meta["KeyId"].startswith("mrk-")
    assert meta["MultiRegion"] is False and "MultiRegionConfiguration" not in meta
    assert "MultiRegionConfiguration" not in _meta(kms, meta["KeyId"])


# -- ReplicateKey ---------------------------------------------------------------------


def test_replicate_key_makes_a_replica_with_its_own_policy_tags_and_description(
    kms: Any, eu_kms: Any
) -> None:
    primary = kms.create_key(
        MultiRegion=True, Description="in virginia", Tags=[{"TagKey": "site", "TagValue": "us"}]
    )["KeyMetadata"]
    key_id = primary["KeyId"]
    replica_policy = _policy(ROOT, {**ROOT, "Sid": "Replica only", "Action": "kms:Describe*"})
    out = kms.replicate_key(
        KeyId=primary["Arn"],
        ReplicaRegion=OTHER_REGION,
        Description="in ireland",
        Policy=replica_policy,
        Tags=[{"TagKey": "site", "TagValue": "eu"}],
    )
    meta = out["ReplicaKeyMetadata"]
    assert meta["KeyId"] == key_id and meta["Arn"] == _arn(OTHER_REGION, key_id)
    # Recorded against AWS (LocalStack's test_kms.snapshot.json, test_replicate_key): the
    # replica's metadata in ReplicateKey's answer has no CurrentKeyMaterialId; DescribeKey
    # of the replica once Enabled has it ("describe-replicated-key"), checked below.
    assert "CurrentKeyMaterialId" not in meta
    assert meta["KeyState"] == "Creating" and meta["Enabled"] is False
    assert meta["Description"] == "in ireland"
    assert meta["MultiRegion"] is True
    assert meta["KeySpec"] == "SYMMETRIC_DEFAULT" and meta["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert meta["MultiRegionConfiguration"] == _config(REGION, key_id, OTHER_REGION, kind="REPLICA")
    assert out["ReplicaPolicy"] == replica_policy
    assert out["ReplicaTags"] == [{"TagKey": "site", "TagValue": "eu"}]

    replica = _wait_enabled(eu_kms, key_id)
    assert replica["KeyState"] == "Enabled" and replica["Enabled"] is True
    assert replica["CurrentKeyMaterialId"] == primary["CurrentKeyMaterialId"]
    described = _meta(kms, key_id)
    assert described["Description"] == "in virginia"
    assert described["MultiRegionConfiguration"] == _config(
        REGION, key_id, OTHER_REGION, kind="PRIMARY"
    )
    # Policy, tags and description are each key's own.
    assert eu_kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"] == replica_policy
    assert json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])[
        "Statement"
    ] == [ROOT]
    assert eu_kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "site", "TagValue": "eu"}]
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "site", "TagValue": "us"}]
    eu_kms.update_key_description(KeyId=key_id, Description="renamed in ireland")
    eu_kms.disable_key(KeyId=key_id)
    assert _meta(kms, key_id)["Description"] == "in virginia"
    assert _meta(kms, key_id)["KeyState"] == "Enabled"
    assert _meta(eu_kms, key_id)["KeyState"] == "Disabled"


def test_replica_has_the_default_policy_when_none_is_given(kms: Any, mrk: dict[str, Any]) -> None:
    out = kms.replicate_key(KeyId=mrk["KeyId"], ReplicaRegion=THIRD_REGION)
    assert json.loads(out["ReplicaPolicy"]) == {
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [ROOT],
    }
    # No tags asked for: AWS's answer has no ReplicaTags member at all (recorded against AWS:
    # LocalStack's test_kms.snapshot.json, test_replicate_key, "replicate-key"), nor the
    # Creating replica's CurrentKeyMaterialId.
    assert "ReplicaTags" not in out
    assert "CurrentKeyMaterialId" not in out["ReplicaKeyMetadata"]
    assert out["ReplicaKeyMetadata"]["Description"] == ""


def test_each_region_lists_its_own_key_of_the_set(kms: Any, eu_kms: Any, replicated: str) -> None:
    def arns(client: Any) -> set[str]:
        found, kwargs = set(), {"Limit": 1000}
        while True:
            page = client.list_keys(**kwargs)
            found |= {k["KeyArn"] for k in page["Keys"]}
            if not page["Truncated"]:
                return found
            kwargs["Marker"] = page["NextMarker"]

    us, eu = arns(kms), arns(eu_kms)
    assert _arn(REGION, replicated) in us and _arn(OTHER_REGION, replicated) not in us
    assert _arn(OTHER_REGION, replicated) in eu and _arn(REGION, replicated) not in eu


def test_aliases_of_a_replica_live_in_its_region(kms: Any, eu_kms: Any, replicated: str) -> None:
    alias = unique_alias("mrk")
    eu_kms.create_alias(AliasName=alias, TargetKeyId=replicated)
    assert eu_kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"] == _arn(OTHER_REGION, replicated)
    assert [a["AliasName"] for a in eu_kms.list_aliases(KeyId=replicated)["Aliases"]] == [alias]
    assert kms.list_aliases(KeyId=replicated)["Aliases"] == []
    assert_kms_error("NotFoundException", kms.describe_key, KeyId=alias)
    # The same alias name may name the primary in its own Region.
    kms.create_alias(AliasName=alias, TargetKeyId=replicated)
    blob = kms.encrypt(KeyId=alias, Plaintext=b"by alias")["CiphertextBlob"]
    assert eu_kms.decrypt(CiphertextBlob=blob, KeyId=alias)["Plaintext"] == b"by alias"


def test_a_primary_replicates_into_several_regions(
    server: Any, kms: Any, eu_kms: Any, mrk: dict[str, Any]
) -> None:
    key_id = mrk["KeyId"]
    _replicate(kms, eu_kms, key_id)
    ap_kms = server.client(region=THIRD_REGION)
    kms.replicate_key(KeyId=key_id, ReplicaRegion=THIRD_REGION)
    _wait_enabled(ap_kms, key_id)
    expected = _config(REGION, key_id, OTHER_REGION, THIRD_REGION, kind="PRIMARY")
    assert _meta(kms, key_id)["MultiRegionConfiguration"] == expected
    assert _meta(ap_kms, key_id)["MultiRegionConfiguration"] == {
        **expected,
        "MultiRegionKeyType": "REPLICA",
    }
    blob = ap_kms.encrypt(KeyId=key_id, Plaintext=b"three regions")["CiphertextBlob"]
    assert eu_kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"three regions"


# -- cryptography across Regions -----------------------------------------------------


def test_ciphertext_of_one_region_decrypts_in_the_other(
    kms: Any, eu_kms: Any, replicated: str
) -> None:
    context = {"purpose": "multi-region"}
    out = kms.encrypt(KeyId=replicated, Plaintext=b"from virginia", EncryptionContext=context)
    blob = out["CiphertextBlob"]
    assert parse_blob(blob).key_id == replicated  # the blob names the key id, not a Region
    opened = eu_kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)
    assert opened["Plaintext"] == b"from virginia"
    assert opened["KeyId"] == _arn(OTHER_REGION, replicated)
    assert (
        opened["KeyMaterialId"]
        == kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)["KeyMaterialId"]
    )
    assert opened["KeyMaterialId"] == _meta(kms, replicated)["CurrentKeyMaterialId"]
    eu_blob = eu_kms.encrypt(KeyId=_arn(OTHER_REGION, replicated), Plaintext=b"from ireland")[
        "CiphertextBlob"
    ]
    assert kms.decrypt(CiphertextBlob=eu_blob, KeyId=replicated)["Plaintext"] == b"from ireland"
    data_key = eu_kms.generate_data_key(KeyId=replicated, KeySpec="AES_256")
    plaintext = kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"]
    assert plaintext == data_key["Plaintext"]
    moved = eu_kms.re_encrypt(
        CiphertextBlob=blob, SourceEncryptionContext=context, DestinationKeyId=replicated
    )
    assert kms.decrypt(CiphertextBlob=moved["CiphertextBlob"])["Plaintext"] == b"from virginia"
    assert_kms_error(
        "InvalidCiphertextException",
        eu_kms.decrypt,
        CiphertextBlob=blob,
        EncryptionContext={"purpose": "other"},
    )


def test_ciphertext_of_a_region_without_the_key_does_not_decrypt(
    kms: Any, eu_kms: Any, mrk: dict[str, Any]
) -> None:
    blob = kms.encrypt(KeyId=mrk["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert_kms_error("InvalidCiphertextException", eu_kms.decrypt, CiphertextBlob=blob)


def test_signature_of_one_region_verifies_in_the_other(kms: Any, eu_kms: Any) -> None:
    key_id = kms.create_key(MultiRegion=True, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")[
        "KeyMetadata"
    ]["KeyId"]
    _replicate(kms, eu_kms, key_id)
    public = kms.get_public_key(KeyId=key_id)["PublicKey"]
    assert eu_kms.get_public_key(KeyId=key_id)["PublicKey"] == public
    signed = kms.sign(KeyId=key_id, Message=b"msg", SigningAlgorithm="ECDSA_SHA_256")
    verified = eu_kms.verify(
        KeyId=key_id,
        Message=b"msg",
        Signature=signed["Signature"],
        SigningAlgorithm="ECDSA_SHA_256",
    )
    assert verified["SignatureValid"] is True
    eu_signed = eu_kms.sign(KeyId=key_id, Message=b"eu", SigningAlgorithm="ECDSA_SHA_256")
    key = load_der_public_key(public)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(eu_signed["Signature"], b"eu", ec.ECDSA(hashes.SHA256()))  # raises if invalid
    assert kms.verify(
        KeyId=key_id,
        Message=b"eu",
        Signature=eu_signed["Signature"],
        SigningAlgorithm="ECDSA_SHA_256",
    )["SignatureValid"]


def test_rsa_ciphertext_of_one_region_decrypts_in_the_other(kms: Any, eu_kms: Any) -> None:
    key_id = kms.create_key(MultiRegion=True, KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")[
        "KeyMetadata"
    ]["KeyId"]
    _replicate(kms, eu_kms, key_id)
    blob = eu_kms.encrypt(
        KeyId=key_id, Plaintext=b"oaep", EncryptionAlgorithm="RSAES_OAEP_SHA_256"
    )["CiphertextBlob"]
    opened = kms.decrypt(
        KeyId=key_id, CiphertextBlob=blob, EncryptionAlgorithm="RSAES_OAEP_SHA_256"
    )
    assert opened["Plaintext"] == b"oaep"


def test_mac_of_one_region_verifies_in_the_other(kms: Any, eu_kms: Any) -> None:
    key_id = kms.create_key(MultiRegion=True, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")[
        "KeyMetadata"
    ]["KeyId"]
    _replicate(kms, eu_kms, key_id)
    mac = eu_kms.generate_mac(KeyId=key_id, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert kms.generate_mac(KeyId=key_id, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"] == mac
    assert kms.verify_mac(KeyId=key_id, Message=b"m", MacAlgorithm="HMAC_SHA_256", Mac=mac)[
        "MacValid"
    ]
    assert_kms_error(
        "KMSInvalidMacException",
        kms.verify_mac,
        KeyId=key_id,
        Message=b"other",
        MacAlgorithm="HMAC_SHA_256",
        Mac=mac,
    )


# -- UpdatePrimaryRegion -------------------------------------------------------------


def test_update_primary_region_swaps_primary_and_replica(
    kms: Any, eu_kms: Any, replicated: str
) -> None:
    key_id = replicated
    old_blob = kms.encrypt(KeyId=key_id, Plaintext=b"before")["CiphertextBlob"]
    assert kms.update_primary_region(KeyId=_arn(REGION, key_id), PrimaryRegion=OTHER_REGION)
    eu = _meta(eu_kms, key_id)
    us = _meta(kms, key_id)
    assert eu["MultiRegionConfiguration"] == _config(OTHER_REGION, key_id, REGION, kind="PRIMARY")
    assert us["MultiRegionConfiguration"] == _config(OTHER_REGION, key_id, REGION, kind="REPLICA")
    assert eu["KeyState"] == us["KeyState"] == "Enabled"
    assert eu["CurrentKeyMaterialId"] == us["CurrentKeyMaterialId"]
    assert eu_kms.decrypt(CiphertextBlob=old_blob)["Plaintext"] == b"before"
    assert kms.decrypt(CiphertextBlob=old_blob)["Plaintext"] == b"before"
    new_blob = kms.encrypt(KeyId=key_id, Plaintext=b"after")["CiphertextBlob"]
    assert eu_kms.decrypt(CiphertextBlob=new_blob)["Plaintext"] == b"after"
    # Only the new primary replicates now.
    assert_kms_error(
        "UnsupportedOperationException",
        kms.replicate_key,
        KeyId=key_id,
        ReplicaRegion=THIRD_REGION,
        message=f"{_arn(REGION, key_id)} is not a multi-region primary key.",
    )
    out = eu_kms.replicate_key(KeyId=key_id, ReplicaRegion=THIRD_REGION)
    assert out["ReplicaKeyMetadata"]["MultiRegionConfiguration"] == _config(
        OTHER_REGION, key_id, REGION, THIRD_REGION, kind="REPLICA"
    )
    # And back again.
    eu_kms.update_primary_region(KeyId=key_id, PrimaryRegion=REGION)
    assert _meta(kms, key_id)["MultiRegionConfiguration"]["MultiRegionKeyType"] == "PRIMARY"
    assert _meta(eu_kms, key_id)["MultiRegionConfiguration"]["PrimaryKey"]["Region"] == REGION


def test_update_primary_region_errors(
    kms: Any, eu_kms: Any, key: dict[str, Any], replicated: str
) -> None:
    key_id = replicated
    assert_kms_error(
        "UnsupportedOperationException",
        kms.update_primary_region,
        KeyId=key["KeyId"],
        PrimaryRegion=OTHER_REGION,
        message=f"{key['Arn']} is not a multi-region primary key.",
    )
    assert_kms_error(
        "UnsupportedOperationException",
        eu_kms.update_primary_region,
        KeyId=key_id,
        PrimaryRegion=REGION,
        message=f"{_arn(OTHER_REGION, key_id)} is not a multi-region primary key.",
    )
    assert_kms_error(
        "NotFoundException",
        kms.update_primary_region,
        KeyId=key_id,
        PrimaryRegion=THIRD_REGION,
        message=f"Key '{_arn(THIRD_REGION, key_id)}' does not exist",
    )
    assert_kms_error(
        "UnsupportedOperationException",
        kms.update_primary_region,
        KeyId=key_id,
        PrimaryRegion=REGION,
    )
    eu_kms.disable_key(KeyId=key_id)
    assert_kms_error(
        "DisabledException",
        kms.update_primary_region,
        KeyId=key_id,
        PrimaryRegion=OTHER_REGION,
        message=f"{_arn(OTHER_REGION, key_id)} is disabled.",
    )
    assert_kms_error(
        "ValidationException", kms.update_primary_region, KeyId=key_id, PrimaryRegion="Mars"
    )
    assert _meta(kms, key_id)["MultiRegionConfiguration"]["MultiRegionKeyType"] == "PRIMARY"


# -- ReplicateKey errors -------------------------------------------------------------


def test_replicate_key_errors(kms: Any, eu_kms: Any, key: dict[str, Any], replicated: str) -> None:
    key_id = replicated
    assert_kms_error(
        "UnsupportedOperationException",
        kms.replicate_key,
        KeyId=key["KeyId"],
        ReplicaRegion=OTHER_REGION,
        message=f"{key['Arn']} is not a multi-region primary key.",
    )
    assert_kms_error(
        "UnsupportedOperationException",
        eu_kms.replicate_key,
        KeyId=key_id,
        ReplicaRegion=THIRD_REGION,
        message=f"{_arn(OTHER_REGION, key_id)} is not a multi-region primary key.",
    )
    for region in (OTHER_REGION, REGION):
        assert_kms_error(
            "AlreadyExistsException", kms.replicate_key, KeyId=key_id, ReplicaRegion=region
        )
    assert_kms_error(
        "ValidationException", kms.replicate_key, KeyId=key_id, ReplicaRegion="not a region"
    )
    alias = unique_alias("mrk")
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    assert_kms_error("NotFoundException", kms.replicate_key, KeyId=alias, ReplicaRegion="us-west-2")
    for kwargs, code in (
        ({"Policy": "not json"}, "MalformedPolicyDocumentException"),
        ({"Tags": [{"TagKey": "aws:x", "TagValue": "y"}]}, "TagException"),
    ):
        assert_kms_error(
            code, kms.replicate_key, KeyId=key_id, ReplicaRegion=THIRD_REGION, **kwargs
        )
    # Nothing was made in the third Region.
    assert _meta(kms, key_id)["MultiRegionConfiguration"] == _config(
        REGION, key_id, OTHER_REGION, kind="PRIMARY"
    )
    kms.disable_key(KeyId=key_id)
    assert_kms_error(
        "DisabledException",
        kms.replicate_key,
        KeyId=key_id,
        ReplicaRegion=THIRD_REGION,
        message=f"{_arn(REGION, key_id)} is disabled.",
    )


# -- deletion (no clock needed) -----------------------------------------------------


def test_primary_with_replicas_waits_in_pending_replica_deletion(
    kms: Any, eu_kms: Any, replicated: str
) -> None:
    key_id = replicated
    out = kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=9)
    assert out["KeyId"] == _arn(REGION, key_id)
    assert out["KeyState"] == "PendingReplicaDeletion"
    assert out["PendingWindowInDays"] == 9
    assert "DeletionDate" not in out
    meta = _meta(kms, key_id)
    assert meta["KeyState"] == "PendingReplicaDeletion" and meta["Enabled"] is False
    assert meta["PendingDeletionWindowInDays"] == 9 and "DeletionDate" not in meta
    arn = _arn(REGION, key_id)
    assert_kms_error(
        "KMSInvalidStateException",
        kms.encrypt,
        KeyId=key_id,
        Plaintext=b"x",
        message=f"{arn} is pending replica deletion.",
    )
    assert_kms_error(
        "KMSInvalidStateException", kms.replicate_key, KeyId=key_id, ReplicaRegion=THIRD_REGION
    )
    assert_kms_error(
        "KMSInvalidStateException",
        kms.update_primary_region,
        KeyId=key_id,
        PrimaryRegion=OTHER_REGION,
    )
    assert_kms_error("KMSInvalidStateException", kms.schedule_key_deletion, KeyId=key_id)
    # The replica is unaffected.
    blob = eu_kms.encrypt(KeyId=key_id, Plaintext=b"still here")["CiphertextBlob"]
    assert eu_kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"still here"
    kms.cancel_key_deletion(KeyId=key_id)
    meta = _meta(kms, key_id)
    assert meta["KeyState"] == "Disabled"
    assert "PendingDeletionWindowInDays" not in meta and "DeletionDate" not in meta
    kms.enable_key(KeyId=key_id)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"still here"


def test_replica_is_scheduled_and_cancelled_like_any_key(
    kms: Any, eu_kms: Any, replicated: str
) -> None:
    out = eu_kms.schedule_key_deletion(KeyId=replicated, PendingWindowInDays=7)
    assert out["KeyState"] == "PendingDeletion" and "DeletionDate" in out
    assert _meta(eu_kms, replicated)["KeyState"] == "PendingDeletion"
    assert _meta(kms, replicated)["KeyState"] == "Enabled"
    # A replica pending deletion still counts: the Region is taken, the primary waits.
    assert_kms_error(
        "AlreadyExistsException", kms.replicate_key, KeyId=replicated, ReplicaRegion=OTHER_REGION
    )
    assert kms.schedule_key_deletion(KeyId=replicated)["KeyState"] == "PendingReplicaDeletion"
    eu_kms.cancel_key_deletion(KeyId=replicated)
    assert _meta(eu_kms, replicated)["KeyState"] == "Disabled"


# -- authorization ---------------------------------------------------------------------


def test_replicate_key_and_update_primary_region_are_not_cross_account(
    kms: Any, other_account: dict[str, Any]
) -> None:
    bob = other_account
    policy = _policy(
        ROOT,
        {
            "Effect": "Allow",
            "Principal": {"AWS": bob["account"]},
            "Action": ["kms:ReplicateKey", "kms:UpdatePrimaryRegion", "kms:DescribeKey"],
            "Resource": "*",
        },
    )
    meta = kms.create_key(MultiRegion=True, Policy=policy)["KeyMetadata"]
    arn = meta["Arn"]
    assert bob["client"].describe_key(KeyId=arn)["KeyMetadata"]["MultiRegion"] is True
    for call, kwargs, action in (
        (bob["client"].replicate_key, {"ReplicaRegion": OTHER_REGION}, "ReplicateKey"),
        (
            bob["client"].update_primary_region,
            {"PrimaryRegion": OTHER_REGION},
            "UpdatePrimaryRegion",
        ),
    ):
        assert_kms_error(
            "AccessDeniedException",
            call,
            KeyId=arn,
            message=f"User: {bob['arn']} is not authorized to perform: kms:{action} on "
            f"resource: {arn} because no resource-based policy allows the kms:{action} action",
            **kwargs,
        )


@pytest.fixture(scope="module")
def conditioned(server: Any) -> dict[str, Any]:
    """A user whose identity policy allows every KMS action but denies CreateKey of primary
    keys, DisableKey of multi-Region keys, ReplicateKey outside eu-west-1,
    UpdatePrimaryRegion to other than eu-west-1 and Encrypt with replica keys:
    {"us": client, "eu": client, "arn": ...}."""
    deny = {"Effect": "Deny", "Resource": "*"}
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            *ALL_KMS["Statement"],
            {
                **deny,
                "Action": "kms:CreateKey",
                "Condition": {"StringEquals": {"kms:MultiRegionKeyType": "PRIMARY"}},
            },
            {
                **deny,
                "Action": "kms:DisableKey",
                "Condition": {"Bool": {"kms:MultiRegion": "true"}},
            },
            {
                **deny,
                "Action": "kms:ReplicateKey",
                "Condition": {"StringNotEquals": {"kms:ReplicaRegion": OTHER_REGION}},
            },
            {
                **deny,
                "Action": "kms:UpdatePrimaryRegion",
                "Condition": {"StringNotEquals": {"kms:PrimaryRegion": OTHER_REGION}},
            },
            {
                **deny,
                "Action": "kms:Encrypt",
                "Condition": {"StringEquals": {"kms:MultiRegionKeyType": "REPLICA"}},
            },
        ],
    }
    user = new_principal(server, "mrk", policy=policy)
    eu = make_client(server.endpoint, user["AccessKeyId"], user["SecretAccessKey"], OTHER_REGION)
    return {"us": user["client"], "eu": eu, "arn": user["arn"]}


def _explicit(user: str, action: str, resource: str) -> str:
    return (
        f"User: {user} is not authorized to perform: kms:{action} on resource: {resource} "
        "with an explicit deny in an identity-based policy"
    )


def test_condition_keys_of_multi_region_keys(
    kms: Any, eu_kms: Any, conditioned: dict[str, Any], mrk: dict[str, Any]
) -> None:
    us, eu, who = conditioned["us"], conditioned["eu"], conditioned["arn"]
    assert_kms_error(
        "AccessDeniedException",
        us.create_key,
        MultiRegion=True,
        message=_explicit(who, "CreateKey", "*"),
    )
    single = us.create_key(MultiRegion=False)["KeyMetadata"]
    us.disable_key(KeyId=single["KeyId"])
    key_id = mrk["KeyId"]
    assert_kms_error(
        "AccessDeniedException",
        us.disable_key,
        KeyId=key_id,
        message=_explicit(who, "DisableKey", mrk["Arn"]),
    )
    assert_kms_error(
        "AccessDeniedException",
        us.replicate_key,
        KeyId=key_id,
        ReplicaRegion=THIRD_REGION,
        message=_explicit(who, "ReplicateKey", mrk["Arn"]),
    )
    # Replication creates a replica key, not a primary: CreateKey is allowed there.
    us.replicate_key(KeyId=key_id, ReplicaRegion=OTHER_REGION)
    _wait_enabled(eu, key_id)
    assert us.encrypt(KeyId=key_id, Plaintext=b"primary")["KeyId"] == mrk["Arn"]
    replica_arn = _arn(OTHER_REGION, key_id)
    assert_kms_error(
        "AccessDeniedException",
        eu.encrypt,
        KeyId=key_id,
        Plaintext=b"replica",
        message=_explicit(who, "Encrypt", replica_arn),
    )
    us.update_primary_region(KeyId=key_id, PrimaryRegion=OTHER_REGION)
    assert_kms_error(
        "AccessDeniedException",
        eu.update_primary_region,
        KeyId=key_id,
        PrimaryRegion=REGION,
        message=_explicit(who, "UpdatePrimaryRegion", replica_arn),
    )
    # After the swap the key in eu-west-1 is the primary: Encrypt there is allowed.
    assert eu.encrypt(KeyId=key_id, Plaintext=b"now primary")["KeyId"] == replica_arn


def test_replicate_key_tags_need_tag_resource_on_the_replica(
    server: Any, eu_kms: Any, mrk: dict[str, Any]
) -> None:
    """ReplicateKey "To use the Tags parameter, kms:TagResource in an IAM policy in the
    replica Region", whose aws:RequestTag/<k> and aws:TagKeys are the replica's tags."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["kms:ReplicateKey", "kms:CreateKey", "kms:DescribeKey"],
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Action": "kms:TagResource",
                "Resource": f"arn:aws:kms:{OTHER_REGION}:{ACCOUNT}:key/*",
                "Condition": {"StringEquals": {"aws:RequestTag/site": "eu"}},
            },
        ],
    }
    user = new_principal(server, "replicator", policy=policy)
    key_id = mrk["KeyId"]
    replica = _arn(OTHER_REGION, key_id)
    for tags in ([{"TagKey": "site", "TagValue": "us"}], [{"TagKey": "owner", "TagValue": "x"}]):
        assert_kms_error(
            "AccessDeniedException",
            user["client"].replicate_key,
            KeyId=key_id,
            ReplicaRegion=OTHER_REGION,
            Tags=tags,
            message=f"User: {user['arn']} is not authorized to perform: kms:TagResource on "
            f"resource: {replica} because no identity-based policy allows the "
            "kms:TagResource action",
        )
    # Nothing was replicated.
    assert_kms_error("NotFoundException", eu_kms.describe_key, KeyId=key_id)
    out = user["client"].replicate_key(
        KeyId=key_id, ReplicaRegion=OTHER_REGION, Tags=[{"TagKey": "site", "TagValue": "eu"}]
    )
    assert out["ReplicaTags"] == [{"TagKey": "site", "TagValue": "eu"}]
    _wait_enabled(eu_kms, key_id)
    assert eu_kms.list_resource_tags(KeyId=key_id)["Tags"] == out["ReplicaTags"]


def test_update_primary_region_needs_permission_on_the_replica_too(
    kms: Any, eu_kms: Any, mrk: dict[str, Any]
) -> None:
    no_update = _policy(
        ROOT,
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "kms:UpdatePrimaryRegion",
            "Resource": "*",
        },
    )
    key_id = mrk["KeyId"]
    _replicate(kms, eu_kms, key_id, Policy=no_update)
    replica_arn = _arn(OTHER_REGION, key_id)
    assert_kms_error(
        "AccessDeniedException",
        kms.update_primary_region,
        KeyId=key_id,
        PrimaryRegion=OTHER_REGION,
        message=f"User: arn:aws:iam::{ACCOUNT}:user/admin is not authorized to perform: "
        f"kms:UpdatePrimaryRegion on resource: {replica_arn} with an explicit deny in a "
        "resource-based policy",
    )
    assert _meta(kms, key_id)["MultiRegionConfiguration"]["MultiRegionKeyType"] == "PRIMARY"


# -- the replication and deletion jobs, driven by hand on a clock the test holds -------


@dataclass
class Jobs:
    """An in-process server whose scheduled jobs run only when the test runs them."""

    server: InProcess

    @property
    def clock(self) -> FakeClock:
        return self.server.clock

    def client(self, region: str) -> Any:
        return self.server.client(region)

    @property
    def us(self) -> Any:
        return self.client(REGION)

    @property
    def eu(self) -> Any:
        return self.client(OTHER_REGION)

    def replicate(self) -> int:
        return complete_replication(self.server.runtime.core)

    def delete(self) -> int:
        return delete_due_keys(self.server.runtime.core)


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[Jobs]:
    with in_process(
        tmp_path / "data", None, job_interval_seconds=3600, change_poll_seconds=3600
    ) as server:
        yield Jobs(server)


def test_replica_is_creating_until_the_replication_job_runs(jobs: Jobs) -> None:
    key_id = jobs.us.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    out = jobs.us.replicate_key(KeyId=key_id, ReplicaRegion=OTHER_REGION)
    assert out["ReplicaKeyMetadata"]["KeyState"] == "Creating"
    replica_arn = _arn(OTHER_REGION, key_id)
    meta = _meta(jobs.eu, key_id)
    assert meta["KeyState"] == "Creating" and meta["Enabled"] is False
    creating = f"{replica_arn} is creating."
    assert_kms_error(
        "KMSInvalidStateException", jobs.eu.encrypt, KeyId=key_id, Plaintext=b"x", message=creating
    )
    assert_kms_error("KMSInvalidStateException", jobs.eu.enable_key, KeyId=key_id, message=creating)
    assert_kms_error(
        "KMSInvalidStateException", jobs.eu.disable_key, KeyId=key_id, message=creating
    )
    # It can be managed meanwhile.
    jobs.eu.tag_resource(KeyId=key_id, Tags=[{"TagKey": "t", "TagValue": "v"}])
    jobs.eu.update_key_description(KeyId=key_id, Description="while creating")
    assert jobs.replicate() == 1
    assert jobs.replicate() == 0
    meta = _meta(jobs.eu, key_id)
    assert meta["KeyState"] == "Enabled" and meta["Description"] == "while creating"
    blob = jobs.eu.encrypt(KeyId=key_id, Plaintext=b"ready")["CiphertextBlob"]
    assert jobs.us.decrypt(CiphertextBlob=blob)["Plaintext"] == b"ready"


def test_replica_scheduled_for_deletion_while_creating_stays_pending(jobs: Jobs) -> None:
    key_id = jobs.us.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    jobs.us.replicate_key(KeyId=key_id, ReplicaRegion=OTHER_REGION)
    jobs.eu.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert jobs.replicate() == 0
    assert _meta(jobs.eu, key_id)["KeyState"] == "PendingDeletion"


def test_primary_is_deleted_only_after_its_last_replica(jobs: Jobs) -> None:
    us, eu, ap = jobs.us, jobs.eu, jobs.client(THIRD_REGION)
    key_id = us.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    for region in (OTHER_REGION, THIRD_REGION):
        us.replicate_key(KeyId=key_id, ReplicaRegion=region)
    jobs.replicate()
    blob = eu.encrypt(KeyId=key_id, Plaintext=b"survives a replica")["CiphertextBlob"]
    assert us.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)["KeyState"] == (
        "PendingReplicaDeletion"
    )
    eu.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)

    jobs.clock.advance(timedelta(days=7, seconds=1))
    assert jobs.delete() == 1
    assert_kms_error("NotFoundException", eu.describe_key, KeyId=key_id)
    meta = _meta(us, key_id)
    assert meta["KeyState"] == "PendingReplicaDeletion" and "DeletionDate" not in meta
    assert meta["MultiRegionConfiguration"] == _config(REGION, key_id, THIRD_REGION, kind="PRIMARY")
    # A deleted replica's ciphertext still decrypts with a related key.
    assert ap.decrypt(CiphertextBlob=blob)["Plaintext"] == b"survives a replica"
    ap.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=30)

    jobs.clock.advance(timedelta(days=29))
    assert jobs.delete() == 0
    assert _meta(us, key_id)["KeyState"] == "PendingReplicaDeletion"
    jobs.clock.advance(timedelta(days=1, seconds=1))
    assert jobs.delete() == 1
    assert_kms_error("NotFoundException", ap.describe_key, KeyId=key_id)
    meta = _meta(us, key_id)
    assert meta["KeyState"] == "PendingDeletion"
    assert meta["MultiRegionConfiguration"] == _config(REGION, key_id, kind="PRIMARY")
    expected = jobs.clock() + timedelta(days=7)
    assert abs((meta["DeletionDate"] - expected).total_seconds()) < 1

    jobs.clock.advance(timedelta(days=6))
    assert jobs.delete() == 0
    jobs.clock.advance(timedelta(days=1, seconds=1))
    assert jobs.delete() == 1
    assert_kms_error("NotFoundException", us.describe_key, KeyId=key_id)


def test_a_deleted_replica_can_be_made_again(jobs: Jobs) -> None:
    us, eu = jobs.us, jobs.eu
    key_id = us.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    us.replicate_key(KeyId=key_id, ReplicaRegion=OTHER_REGION)
    jobs.replicate()
    blob = eu.encrypt(KeyId=key_id, Plaintext=b"old replica")["CiphertextBlob"]
    eu.create_alias(AliasName="alias/replica", TargetKeyId=key_id)
    eu.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    jobs.clock.advance(timedelta(days=8))
    assert jobs.delete() == 1
    assert "TargetKeyId" not in str(eu.list_aliases()["Aliases"])  # only AWS's predefined
    assert us.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    us.replicate_key(KeyId=key_id, ReplicaRegion=OTHER_REGION, Description="again")
    jobs.replicate()
    assert _meta(eu, key_id)["Description"] == "again"
    assert eu.decrypt(CiphertextBlob=blob)["Plaintext"] == b"old replica"


def test_cancelled_primary_deletion_is_not_resumed_by_the_job(jobs: Jobs) -> None:
    us, eu = jobs.us, jobs.eu
    key_id = us.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    us.replicate_key(KeyId=key_id, ReplicaRegion=OTHER_REGION)
    jobs.replicate()
    us.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    us.cancel_key_deletion(KeyId=key_id)
    eu.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    jobs.clock.advance(timedelta(days=8))
    assert jobs.delete() == 1
    meta = _meta(us, key_id)
    assert meta["KeyState"] == "Disabled" and "DeletionDate" not in meta


def test_a_material_version_added_to_the_primary_later_is_used_by_its_replicas(
    jobs: Jobs,
) -> None:
    us, eu = jobs.us, jobs.eu
    key_id = us.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    us.replicate_key(KeyId=key_id, ReplicaRegion=OTHER_REGION)
    jobs.replicate()
    first = eu.generate_data_key(KeyId=key_id, NumberOfBytes=16)
    us.rotate_key_on_demand(KeyId=key_id)  # a new material version on the primary
    second = eu.generate_data_key(KeyId=key_id, NumberOfBytes=16)
    assert parse_blob(first["CiphertextBlob"]).material_version == 1
    assert parse_blob(second["CiphertextBlob"]).material_version == 2
    assert second["KeyMaterialId"] != first["KeyMaterialId"]
    assert _meta(eu, key_id)["CurrentKeyMaterialId"] == second["KeyMaterialId"]
    assert _meta(us, key_id)["CurrentKeyMaterialId"] == second["KeyMaterialId"]
    for client in (us, eu):
        for out in (first, second):
            opened = client.decrypt(CiphertextBlob=out["CiphertextBlob"])
            assert opened["Plaintext"] == out["Plaintext"]
            assert opened["KeyMaterialId"] == out["KeyMaterialId"]
    # After the primary moves, the new primary holds every version and gains the next.
    us.update_primary_region(KeyId=key_id, PrimaryRegion=OTHER_REGION)
    eu.rotate_key_on_demand(KeyId=key_id)
    assert_kms_error("UnsupportedOperationException", us.rotate_key_on_demand, KeyId=key_id)
    third = us.generate_data_key(KeyId=key_id, NumberOfBytes=16)
    assert parse_blob(third["CiphertextBlob"]).material_version == 3
    for client in (us, eu):
        for out in (first, second, third):
            opened = client.decrypt(CiphertextBlob=out["CiphertextBlob"])
            assert opened["Plaintext"] == out["Plaintext"]


def _history(kms: Any, key_id: str) -> list[dict[str, Any]]:
    out = kms.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")
    return out["Rotations"]  # type: ignore[no-any-return]


def _rotation_status(kms: Any, key_id: str) -> tuple[Any, ...]:
    out = kms.get_key_rotation_status(KeyId=key_id)
    return out["KeyRotationEnabled"], out["RotationPeriodInDays"], out["NextRotationDate"]


def test_the_new_primary_shows_the_sets_rotation_history_and_schedule(jobs: Jobs) -> None:
    us, eu = jobs.us, jobs.eu
    key_id = us.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    us.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=180)
    us.replicate_key(KeyId=key_id, ReplicaRegion=OTHER_REGION)
    jobs.replicate()
    us.rotate_key_on_demand(KeyId=key_id)
    us.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)  # after the replication
    history = _history(us, key_id)
    assert [r["KeyMaterialState"] for r in history] == ["NON_CURRENT", "CURRENT"]
    status = _rotation_status(us, key_id)
    assert status[:2] == (True, 90)

    us.update_primary_region(KeyId=key_id, PrimaryRegion=OTHER_REGION)
    assert _history(eu, key_id) == history
    (rotation,) = eu.list_key_rotations(KeyId=key_id)["Rotations"]
    assert rotation["RotationType"] == "ON_DEMAND"
    assert _rotation_status(eu, key_id) == status
    assert _rotation_status(us, key_id) == status  # a replica shows its primary's schedule

    # The new primary rotates on, on demand and on its schedule, and counts on from there.
    eu.rotate_key_on_demand(KeyId=key_id)
    jobs.clock.advance(timedelta(days=91))
    assert rotate_due_keys(jobs.server.runtime.core) == 1
    after = _history(eu, key_id)
    assert [(r["KeyMaterialState"], r.get("RotationType")) for r in after] == [
        ("NON_CURRENT", None),
        ("NON_CURRENT", "ON_DEMAND"),
        ("NON_CURRENT", "ON_DEMAND"),
        ("CURRENT", "AUTOMATIC"),
    ]
    current = after[-1]["KeyMaterialId"]
    assert _meta(us, key_id)["CurrentKeyMaterialId"] == _meta(eu, key_id)["CurrentKeyMaterialId"]
    assert _meta(eu, key_id)["CurrentKeyMaterialId"] == current
    blob = us.encrypt(KeyId=key_id, Plaintext=b"after the move")["CiphertextBlob"]
    assert parse_blob(blob).material_version == 4
    assert eu.decrypt(CiphertextBlob=blob)["Plaintext"] == b"after the move"
