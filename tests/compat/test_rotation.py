"""Key rotation through boto3: EnableKeyRotation / DisableKeyRotation / GetKeyRotationStatus,
RotateKeyOnDemand (AWS's limit of 25, keys with imported material), ListKeyRotations with
pagination, the automatic rotation job under a clock the test moves, and what AWS refuses:
other key specs, imported material, other accounts, key states, the kms:RotationPeriodInDays
condition key."""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from conftest import start_server, stop_server
from strongroom.crypto.wrap import material_aad
from strongroom.keystores.filekey import FileRootKey
from strongroom.storage.migrate import alembic_config

from ._byok import NO_EXPIRY, import_material, open_blob, wrap
from ._in_process import InProcess, fresh_database, in_process, settle
from ._support import ACCOUNT, assert_kms_error, eventually, service_change

pytestmark = pytest.mark.compat

DAY = timedelta(days=1)


def _describe(kms: Any, key: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    return meta


def _status(kms: Any, key: dict[str, Any]) -> dict[str, Any]:
    out = kms.get_key_rotation_status(KeyId=key["Arn"])
    out.pop("ResponseMetadata")
    return dict(out)


def _rotations(kms: Any, key: dict[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
    pages = kms.get_paginator("list_key_rotations").paginate(KeyId=key["KeyId"], **kwargs)
    return [entry for page in pages for entry in page["Rotations"]]


def _close(when: datetime, expected: datetime) -> bool:
    return abs((when - expected).total_seconds()) < 2


# -- automatic rotation settings ----------------------------------------------------------


def test_rotation_is_off_for_a_new_key(kms: Any, key: dict[str, Any]) -> None:
    assert _status(kms, key) == {"KeyRotationEnabled": False, "KeyId": key["KeyId"]}
    assert kms.list_key_rotations(KeyId=key["KeyId"])["Rotations"] == []
    (first,) = _rotations(kms, key, IncludeKeyMaterial="ALL_KEY_MATERIAL")
    assert first == {
        "KeyId": key["KeyId"],
        "KeyMaterialId": key["CurrentKeyMaterialId"],
        "KeyMaterialState": "CURRENT",
    }


def test_enable_change_and_disable_automatic_rotation(kms: Any, key: dict[str, Any]) -> None:
    kms.enable_key_rotation(KeyId=key["KeyId"])
    enabled_at = datetime.now(UTC)
    status = _status(kms, key)
    assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 365
    assert _close(status["NextRotationDate"], enabled_at + 365 * DAY)
    # A new period counts from when rotation was turned on.
    kms.enable_key_rotation(KeyId=key["Arn"], RotationPeriodInDays=90)
    status = _status(kms, key)
    assert status["RotationPeriodInDays"] == 90
    assert _close(status["NextRotationDate"], enabled_at + 90 * DAY)
    kms.enable_key_rotation(KeyId=key["Arn"], RotationPeriodInDays=2560)
    assert _status(kms, key)["RotationPeriodInDays"] == 2560
    kms.disable_key_rotation(KeyId=key["KeyId"])
    assert _status(kms, key) == {"KeyRotationEnabled": False, "KeyId": key["KeyId"]}
    meta = _describe(kms, key)
    assert (
        meta["KeyState"] == "Enabled"
        and meta["CurrentKeyMaterialId"] == key["CurrentKeyMaterialId"]
    )


@pytest.mark.parametrize("days", [0, 89, 2561])
def test_rotation_period_outside_90_to_2560_days_is_refused(
    raw_kms: Any, key: dict[str, Any], days: int
) -> None:
    bound = "greater than or equal to 90" if days < 90 else "less than or equal to 2560"
    assert_kms_error(
        "ValidationException",
        raw_kms.enable_key_rotation,
        KeyId=key["KeyId"],
        RotationPeriodInDays=days,
        message=(
            f"1 validation error detected: Value '{days}' at 'rotationPeriodInDays' failed to "
            f"satisfy constraint: Member must have value {bound}"
        ),
    )
    assert _status(raw_kms, key)["KeyRotationEnabled"] is False


def test_rotation_settings_follow_the_key_state(kms: Any) -> None:
    key = kms.create_key()["KeyMetadata"]
    kms.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=180)
    kms.disable_key(KeyId=key["KeyId"])
    for call in (kms.enable_key_rotation, kms.disable_key_rotation, kms.rotate_key_on_demand):
        assert_kms_error(
            "DisabledException", call, KeyId=key["KeyId"], message=f"{key['Arn']} is disabled."
        )
    assert _status(kms, key)["KeyRotationEnabled"] is True  # readable while disabled
    kms.enable_key(KeyId=key["KeyId"])
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    # While pending deletion the status reads false; cancelling brings it back.
    assert _status(kms, key) == {"KeyRotationEnabled": False, "KeyId": key["KeyId"]}
    for call in (kms.enable_key_rotation, kms.disable_key_rotation, kms.rotate_key_on_demand):
        assert_kms_error(
            "KMSInvalidStateException",
            call,
            KeyId=key["KeyId"],
            message=f"{key['Arn']} is pending deletion.",
        )
    kms.cancel_key_deletion(KeyId=key["KeyId"])
    status = _status(kms, key)
    assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 180
    assert _describe(kms, key)["KeyState"] == "Disabled"


@pytest.mark.parametrize(
    ("spec", "usage"),
    [
        ("RSA_2048", "ENCRYPT_DECRYPT"),
        ("ECC_NIST_P256", "SIGN_VERIFY"),
        ("HMAC_256", "GENERATE_VERIFY_MAC"),
    ],
)
def test_only_symmetric_encryption_keys_rotate(
    kms: Any, key_of: Any, spec: str, usage: str
) -> None:
    key = key_of(spec, usage)
    message = f"{key['Arn']} key spec is {spec} which is not valid for this operation."
    for call, kwargs in (
        (kms.enable_key_rotation, {}),
        (kms.enable_key_rotation, {"RotationPeriodInDays": 90}),
        (kms.disable_key_rotation, {}),
        (kms.get_key_rotation_status, {}),
        (kms.list_key_rotations, {}),
    ):
        assert_kms_error(
            "UnsupportedOperationException", call, KeyId=key["KeyId"], message=message, **kwargs
        )
    # AWS's RotateKeyOnDemand answer has no message (reference: a response recorded against AWS).
    assert_kms_error(
        "UnsupportedOperationException", kms.rotate_key_on_demand, KeyId=key["KeyId"], message=""
    )
    assert _describe(kms, key)["KeyState"] == "Enabled"


def test_keys_with_imported_material_do_not_rotate_automatically(kms: Any) -> None:
    key = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]
    message = f"{key['Arn']} origin is EXTERNAL which is not valid for this operation."
    for call in (kms.enable_key_rotation, kms.disable_key_rotation, kms.get_key_rotation_status):
        assert_kms_error("UnsupportedOperationException", call, KeyId=key["KeyId"], message=message)
    # On demand, it needs material first, and then new material imported for the rotation.
    assert_kms_error(
        "KMSInvalidStateException",
        kms.rotate_key_on_demand,
        KeyId=key["KeyId"],
        message=f"{key['Arn']} is pending import.",
    )
    import_material(kms, key["KeyId"], os.urandom(32))
    assert_kms_error(
        "UnsupportedOperationException",
        kms.enable_key_rotation,
        KeyId=key["KeyId"],
        message=message,
    )
    assert_kms_error(
        "KMSInvalidStateException",
        kms.rotate_key_on_demand,
        KeyId=key["KeyId"],
        message=f"No available key material pending rotation for the key: {key['Arn']}.",
    )
    assert _describe(kms, key)["KeyState"] == "Enabled"


def test_rotation_takes_key_ids_and_arns_not_aliases(kms: Any, aliased_key: dict[str, Any]) -> None:
    for call in (
        kms.enable_key_rotation,
        kms.get_key_rotation_status,
        kms.rotate_key_on_demand,
        kms.list_key_rotations,
    ):
        assert_kms_error("NotFoundException", call, KeyId=aliased_key["alias"])
    assert_kms_error(
        "NotFoundException", kms.rotate_key_on_demand, KeyId="11111111-2222-3333-4444-555555555555"
    )


# -- on-demand rotation -----------------------------------------------------------------


def test_on_demand_rotation_adds_a_version_and_keeps_the_old_ones(
    kms: Any, aliased_key: dict[str, Any]
) -> None:
    key, alias = aliased_key["meta"], aliased_key["alias"]
    policy = kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"]
    old = kms.encrypt(KeyId=alias, Plaintext=b"before")
    out = kms.rotate_key_on_demand(KeyId=key["KeyId"])
    # AWS answers the key ARN though the request named the key by its id (recorded against
    # AWS: LocalStack's test_kms.snapshot.json, test_rotate_key_on_demand_for_external_keys_
    # decrypts_with_previous_material, "rotate-key-on-demand-response").
    assert out["KeyId"] == key["Arn"]
    meta = _describe(kms, key)
    new_id = meta["CurrentKeyMaterialId"]
    assert new_id != key["CurrentKeyMaterialId"]
    assert (meta["Arn"], meta["KeyState"], meta["KeyId"]) == (key["Arn"], "Enabled", key["KeyId"])
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == key["KeyId"]
    assert kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"] == policy
    assert _status(kms, key)["KeyRotationEnabled"] is False  # on demand changes no schedule

    new = kms.encrypt(KeyId=alias, Plaintext=b"after")["CiphertextBlob"]
    first = kms.decrypt(CiphertextBlob=old["CiphertextBlob"])
    second = kms.decrypt(CiphertextBlob=new)
    assert (first["Plaintext"], first["KeyMaterialId"]) == (b"before", key["CurrentKeyMaterialId"])
    assert (second["Plaintext"], second["KeyMaterialId"]) == (b"after", new_id)
    data_key = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    assert data_key["KeyMaterialId"] == new_id
    again = kms.re_encrypt(CiphertextBlob=old["CiphertextBlob"], DestinationKeyId=key["KeyId"])
    assert again["SourceKeyMaterialId"] == key["CurrentKeyMaterialId"]
    assert again["DestinationKeyMaterialId"] == new_id
    assert kms.decrypt(CiphertextBlob=again["CiphertextBlob"])["Plaintext"] == b"before"

    (rotation,) = kms.list_key_rotations(KeyId=key["KeyId"])["Rotations"]
    assert rotation["KeyMaterialId"] == new_id and rotation["RotationType"] == "ON_DEMAND"
    assert rotation["KeyMaterialState"] == "CURRENT" and rotation["KeyId"] == key["KeyId"]
    assert _close(rotation["RotationDate"], datetime.now(UTC))
    every = _rotations(kms, key, IncludeKeyMaterial="ALL_KEY_MATERIAL")
    assert [(e["KeyMaterialId"], e["KeyMaterialState"]) for e in every] == [
        (key["CurrentKeyMaterialId"], "NON_CURRENT"),
        (new_id, "CURRENT"),
    ]


def test_on_demand_rotation_limit_is_25_and_list_key_rotations_pages(kms: Any) -> None:
    key = kms.create_key()["KeyMetadata"]
    blobs = [kms.encrypt(KeyId=key["KeyId"], Plaintext=b"v1")["CiphertextBlob"]]
    for n in range(2, 27):
        kms.rotate_key_on_demand(KeyId=key["KeyId"])
        blobs.append(kms.encrypt(KeyId=key["KeyId"], Plaintext=f"v{n}".encode())["CiphertextBlob"])
    before = _describe(kms, key)["CurrentKeyMaterialId"]
    assert_kms_error(
        "LimitExceededException",
        kms.rotate_key_on_demand,
        KeyId=key["KeyId"],
        message=(
            "The on-demand rotations limit has been reached for the given keyId. No more "
            f"on-demand rotations can be performed for this key: {key['Arn']}"
        ),
    )
    assert _describe(kms, key)["CurrentKeyMaterialId"] == before
    for n, blob in enumerate(blobs, start=1):
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == f"v{n}".encode()

    first = kms.list_key_rotations(KeyId=key["KeyId"], Limit=10)
    assert len(first["Rotations"]) == 10 and first["Truncated"] is True
    second = kms.list_key_rotations(KeyId=key["KeyId"], Limit=10, Marker=first["NextMarker"])
    third = kms.list_key_rotations(KeyId=key["KeyId"], Limit=10, Marker=second["NextMarker"])
    assert len(third["Rotations"]) == 5 and third["Truncated"] is False
    assert "NextMarker" not in third
    ids = [e["KeyMaterialId"] for p in (first, second, third) for e in p["Rotations"]]
    assert len(set(ids)) == 25 and ids[-1] == before
    assert len(_rotations(kms, key, IncludeKeyMaterial="ALL_KEY_MATERIAL")) == 26
    assert_kms_error(
        "InvalidMarkerException", kms.list_key_rotations, KeyId=key["KeyId"], Marker="bogus"
    )


def test_imported_symmetric_key_rotates_to_new_imported_material(kms: Any) -> None:
    key = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]
    first, second, third = os.urandom(32), os.urandom(32), os.urandom(32)
    first_id = import_material(kms, key["KeyId"], first)["KeyMaterialId"]
    old = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"first")["CiphertextBlob"]

    second_id = import_material(
        kms,
        key["KeyId"],
        second,
        ImportType="NEW_KEY_MATERIAL",
        KeyMaterialDescription="for 2027",
        **NO_EXPIRY,
    )["KeyMaterialId"]
    meta = _describe(kms, key)
    assert meta["KeyState"] == "Enabled" and meta["CurrentKeyMaterialId"] == first_id
    pending = _rotations(kms, key, IncludeKeyMaterial="ALL_KEY_MATERIAL")[-1]
    assert pending == {
        "KeyId": key["KeyId"],
        "KeyMaterialId": second_id,
        "KeyMaterialState": "PENDING_ROTATION",
        "ImportState": "IMPORTED",
        "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE",
        "KeyMaterialDescription": "for 2027",
    }
    assert kms.list_key_rotations(KeyId=key["KeyId"])["Rotations"] == []
    params = kms.get_parameters_for_import(
        KeyId=key["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
    )
    refused = assert_kms_error(
        "KMSInvalidStateException",
        kms.import_key_material,
        KeyId=key["KeyId"],
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", third),
        ImportType="NEW_KEY_MATERIAL",
        **NO_EXPIRY,
    )["Error"]["Message"]
    pattern = (
        r"New key material \(id: (?P<id>[0-9a-f]{64})\) cannot be imported into KMS key "
        f"{re.escape(key['Arn'])}, because another key material \\(id: {second_id}\\) is "
        r"pending rotation\."
    )
    match = re.fullmatch(pattern, refused)
    assert match is not None, refused

    kms.rotate_key_on_demand(KeyId=key["KeyId"])
    meta = _describe(kms, key)
    assert meta["CurrentKeyMaterialId"] == second_id and meta["KeyState"] == "Enabled"
    new = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"second")["CiphertextBlob"]
    assert open_blob(second, new) == b"second" and open_blob(first, old) == b"first"
    assert kms.decrypt(CiphertextBlob=old)["KeyMaterialId"] == first_id
    (rotation,) = kms.list_key_rotations(KeyId=key["KeyId"])["Rotations"]
    assert rotation["KeyMaterialId"] == second_id and rotation["RotationType"] == "ON_DEMAND"

    # Material pending rotation can be deleted and other material imported in its place;
    # the key stays usable meanwhile.
    third_id = import_material(
        kms, key["KeyId"], third, ImportType="NEW_KEY_MATERIAL", **NO_EXPIRY
    )["KeyMaterialId"]
    assert third_id == match["id"]  # the id the refusal named
    kms.delete_imported_key_material(KeyId=key["KeyId"], KeyMaterialId=third_id)
    assert _describe(kms, key)["KeyState"] == "Enabled"
    assert third_id not in {
        e["KeyMaterialId"] for e in _rotations(kms, key, IncludeKeyMaterial="ALL_KEY_MATERIAL")
    }

    # Every permanently associated material must be imported for the key to work.
    kms.delete_imported_key_material(KeyId=key["KeyId"], KeyMaterialId=first_id)
    assert _describe(kms, key)["KeyState"] == "PendingImport"
    for blob in (old, new):
        assert_kms_error(
            "KMSInvalidStateException",
            kms.decrypt,
            CiphertextBlob=blob,
            message=f"{key['Arn']} is pending import.",
        )
    import_material(
        kms,
        key["KeyId"],
        first,
        ImportType="EXISTING_KEY_MATERIAL",
        KeyMaterialId=first_id,
        **NO_EXPIRY,
    )
    assert _describe(kms, key)["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=old)["Plaintext"] == b"first"
    assert kms.decrypt(CiphertextBlob=new)["Plaintext"] == b"second"


# -- who may rotate ------------------------------------------------------------------------


def test_other_accounts_may_read_but_not_change_rotation(
    kms: Any, other_account: dict[str, Any]
) -> None:
    bob = other_account["client"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "Other account",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{other_account['account']}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
        ],
    }
    key = kms.create_key(Policy=json.dumps(policy))["KeyMetadata"]
    kms.enable_key_rotation(KeyId=key["KeyId"])
    assert bob.get_key_rotation_status(KeyId=key["Arn"])["KeyRotationEnabled"] is True
    for call, action in (
        (bob.enable_key_rotation, "EnableKeyRotation"),
        (bob.disable_key_rotation, "DisableKeyRotation"),
        (bob.rotate_key_on_demand, "RotateKeyOnDemand"),
        (bob.list_key_rotations, "ListKeyRotations"),
        (bob.delete_imported_key_material, "DeleteImportedKeyMaterial"),
    ):
        assert_kms_error(
            "AccessDeniedException",
            call,
            KeyId=key["Arn"],
            message=(
                f"User: {other_account['arn']} is not authorized to perform: kms:{action} on "
                f"resource: {key['Arn']} because no resource-based policy allows the "
                f"kms:{action} action"
            ),
        )
    assert _status(kms, key)["KeyRotationEnabled"] is True
    assert kms.list_key_rotations(KeyId=key["KeyId"])["Rotations"] == []


def test_rotation_period_condition_key_limits_enable_key_rotation(kms: Any) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "kms:EnableKeyRotation",
                "Resource": "*",
                "Condition": {"NumericGreaterThan": {"kms:RotationPeriodInDays": "180"}},
            },
        ],
    }
    key = kms.create_key(Policy=json.dumps(policy))["KeyMetadata"]
    assert_kms_error(
        "AccessDeniedException",
        kms.enable_key_rotation,
        KeyId=key["KeyId"],
        RotationPeriodInDays=365,
    )
    assert _status(kms, key)["KeyRotationEnabled"] is False
    kms.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=180)
    assert _status(kms, key)["RotationPeriodInDays"] == 180


# -- the automatic rotation job (a clock the test moves) ------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[InProcess]:
    with fresh_database(request.param) as url, in_process(tmp_path / "data", url) as running:
        yield running


def _automatic(kms: Any, key: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in _rotations(kms, key) if e["RotationType"] == "AUTOMATIC"]


def test_the_job_rotates_keys_when_their_period_has_passed(app: InProcess) -> None:
    kms = app.kms
    key = kms.create_key()["KeyMetadata"]
    idle = kms.create_key()["KeyMetadata"]
    kms.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=90)
    due = _status(kms, key)["NextRotationDate"]
    assert _close(due, app.clock() + 90 * DAY)
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"quarter one")["CiphertextBlob"]

    app.clock.advance(89 * DAY)
    settle()
    assert _automatic(kms, key) == []
    # On demand in between leaves the schedule as it was (RotateKeyOnDemand doc).
    kms.rotate_key_on_demand(KeyId=key["KeyId"])
    assert _status(kms, key)["NextRotationDate"] == due

    app.clock.advance(DAY + timedelta(seconds=1))
    (rotation,) = eventually(lambda: _one(_automatic(kms, key)))
    rotated_at = app.clock()
    assert _close(rotation["RotationDate"], rotated_at)
    # Other requests may hold the key record of before the job's change for one poll.
    eventually(lambda: _assert_current(kms, key, rotation["KeyMaterialId"]))
    assert _close(_status(kms, key)["NextRotationDate"], rotated_at + 90 * DAY)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"quarter one"
    out = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"quarter two")
    assert (
        kms.decrypt(CiphertextBlob=out["CiphertextBlob"])["KeyMaterialId"]
        == (rotation["KeyMaterialId"])
    )
    assert _rotations(kms, idle) == []  # rotation off: never rotated


def test_an_automatic_rotation_is_in_the_trail_as_aws_records_it(app: InProcess) -> None:
    """ct-rotatekey: an AwsServiceEvent whose serviceEventDetails name the rotation's type,
    the key's origin and the materials before and after; its intent comes first."""
    kms = app.kms
    key = kms.create_key()["KeyMetadata"]
    before = _describe(kms, key)["CurrentKeyMaterialId"]
    kms.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=90)
    app.clock.advance(90 * DAY + timedelta(seconds=1))
    (rotation,) = eventually(lambda: _one(_automatic(kms, key)))
    event = eventually(lambda: service_change(app, "RotateKey", key["Arn"]))
    assert event["responseElements"] is None
    assert event["serviceEventDetails"] == {
        "keyId": key["KeyId"],
        "rotationType": "AUTOMATIC",
        "keyOrigin": "AWS_KMS",
        "previousKeyMaterialId": before,
        "currentKeyMaterialId": rotation["KeyMaterialId"],
    }


def _assert_current(kms: Any, key: dict[str, Any], material_id: str) -> None:
    assert _describe(kms, key)["CurrentKeyMaterialId"] == material_id


def _one(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert len(items) == 1, items
    return items


def test_a_disabled_key_is_not_rotated_until_it_is_enabled_again(app: InProcess) -> None:
    kms = app.kms
    key = kms.create_key()["KeyMetadata"]
    kms.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=90)
    kms.disable_key(KeyId=key["KeyId"])
    app.clock.advance(200 * DAY)
    settle()
    assert _automatic(kms, key) == []
    kms.enable_key(KeyId=key["KeyId"])
    # Rotation overdue while disabled happens at once (rotate-keys.md).
    eventually(lambda: _one(_automatic(kms, key)))
    assert _describe(kms, key)["KeyState"] == "Enabled"


def test_on_demand_rotation_conflicts_with_an_automatic_one_due_within_20_minutes(
    app: InProcess,
) -> None:
    kms = app.kms
    key = kms.create_key()["KeyMetadata"]
    kms.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=90)
    app.clock.advance(90 * DAY - timedelta(minutes=19))
    assert_kms_error("ConflictException", kms.rotate_key_on_demand, KeyId=key["KeyId"])
    assert _rotations(kms, key) == []
    app.clock.advance(timedelta(minutes=20))
    eventually(lambda: _one(_automatic(kms, key)))
    kms.rotate_key_on_demand(KeyId=key["KeyId"])
    assert [e["RotationType"] for e in _rotations(kms, key)] == ["AUTOMATIC", "ON_DEMAND"]


def test_the_on_demand_limit_is_a_setting(tmp_path: Path) -> None:
    with in_process(tmp_path / "data", None, on_demand_rotation_limit=2) as running:
        kms = running.kms
        key = kms.create_key()["KeyMetadata"]
        kms.rotate_key_on_demand(KeyId=key["KeyId"])
        kms.rotate_key_on_demand(KeyId=key["KeyId"])
        assert_kms_error("LimitExceededException", kms.rotate_key_on_demand, KeyId=key["KeyId"])
        assert len(_rotations(kms, key)) == 2


# -- keys made before rotation support ----------------------------------------------------


def _material_id_before_0005(arn: str, version: int) -> str:
    """The CurrentKeyMaterialId that DescribeKey showed before migration 0005: SHA-256 of the
    canonical encoding (strongroom/crypto/context.py) of {"keyArn": arn, "version": "n"}."""

    def field(text: str) -> bytes:
        return struct.pack(">I", len(text.encode())) + text.encode()

    encoded = struct.pack(">I", 2) + field("keyArn") + field(arn) + field("version")
    return hashlib.sha256(encoded + field(str(version))).hexdigest()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_keys_made_before_migration_0005_keep_their_material_and_id(
    tmp_path: Path, backend: str
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    arn = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{uuid.uuid4()}"
    material = os.urandom(32)
    with fresh_database(backend) as url:
        engine = sa.create_engine(url or f"sqlite:///{data / 'strongroom.db'}")
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0002")
            wrapped = FileRootKey.create(data / "root.key").wrap(material, material_aad(arn, 1))
            conn.execute(
                sa.text(
                    "INSERT INTO keys (arn, key_id, account_id, region, state, description, "
                    "key_usage, key_spec, origin, key_manager, multi_region, policy, "
                    "creation_date, current_version) VALUES (:arn, :kid, :acct, 'us-east-1', "
                    "'Enabled', 'old', 'ENCRYPT_DECRYPT', 'SYMMETRIC_DEFAULT', 'AWS_KMS', "
                    "'CUSTOMER', false, :policy, :now, 1)"
                ),
                {
                    "arn": arn,
                    "kid": arn.rsplit("/", 1)[1],
                    "acct": ACCOUNT,
                    "policy": json.dumps(_ROOT_POLICY),
                    "now": time.time(),
                },
            )
            conn.execute(
                sa.text(
                    "INSERT INTO key_materials (key_arn, version, wrapped, created) "
                    "VALUES (:arn, 1, :wrapped, :now)"
                ),
                {"arn": arn, "wrapped": wrapped, "now": time.time()},
            )
        engine.dispose()
        server = start_server(data, url)
        try:
            kms = server.client()
            meta = kms.describe_key(KeyId=arn)["KeyMetadata"]
            assert meta["CurrentKeyMaterialId"] == _material_id_before_0005(arn, 1)
            (entry,) = _rotations(kms, meta, IncludeKeyMaterial="ALL_KEY_MATERIAL")
            assert entry["KeyMaterialState"] == "CURRENT"
            blob = kms.encrypt(KeyId=arn, Plaintext=b"old key")["CiphertextBlob"]
            assert open_blob(material, blob) == b"old key"
            kms.rotate_key_on_demand(KeyId=arn)
            assert kms.decrypt(CiphertextBlob=blob)["KeyMaterialId"] == entry["KeyMaterialId"]
            assert len(kms.list_key_rotations(KeyId=arn)["Rotations"]) == 1
        finally:
            stop_server(server)


_ROOT_POLICY = {
    "Version": "2012-10-17",
    "Id": "key-default-1",
    "Statement": [
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ],
}
