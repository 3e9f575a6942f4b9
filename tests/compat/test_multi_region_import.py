"""Multi-Region keys with imported key material through boto3 clients of two Regions, as the
AWS KMS Developer Guide's "Importing key material into multi-Region keys" describes it: a
replica starts without material (PendingImport) and takes the primary's material through
its own GetParametersForImport + ImportKeyMaterial; each key's import has its own expiry,
deletion and expiry erase one key's wrapped copy only, ciphertexts work across the Regions
once both keys hold the material, and new material for on-demand rotation goes into the
primary first, then into every replica. The scheduled jobs run when the test runs them."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from strongroom.services.deletion import delete_due_keys
from strongroom.services.imports import expire_due_materials
from strongroom.services.multiregion import complete_replication

from ._byok import import_material, stored_materials, stored_versions
from ._in_process import InProcess, fresh_database, in_process
from ._support import OTHER_REGION, REGION, assert_kms_error

pytestmark = pytest.mark.compat

EXPIRES = "KEY_MATERIAL_EXPIRES"


@dataclass
class Pair:
    """An in-process server, clients of its two Regions, and its jobs on demand."""

    app: InProcess

    @property
    def us(self) -> Any:
        return self.app.client(REGION)

    @property
    def eu(self) -> Any:
        return self.app.client(OTHER_REGION)

    def replicate(self) -> int:
        return complete_replication(self.app.runtime.core)

    def expire(self) -> int:
        return expire_due_materials(self.app.runtime.core)

    def delete(self) -> int:
        return delete_due_keys(self.app.runtime.core)

    def rows(self, arn: str) -> list[tuple[int, bytes]]:
        return stored_materials(self.app.database_url, arn)


@pytest.fixture(params=["sqlite", "postgres"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    with (
        fresh_database(request.param) as url,
        in_process(
            tmp_path / "data", url, job_interval_seconds=3600, change_poll_seconds=3600
        ) as app,
    ):
        yield Pair(app)


@dataclass
class ImportedSet:
    key_id: str
    us_arn: str
    eu_arn: str
    material: bytes
    material_id: str


def _meta(kms: Any, key_id: str) -> dict[str, Any]:
    return kms.describe_key(KeyId=key_id)["KeyMetadata"]  # type: ignore[no-any-return]


def _replicated(pair: Pair) -> ImportedSet:
    """A multi-Region primary in us-east-1 with imported material that does not expire, and
    its replica in eu-west-1 once replication completed (still without material)."""
    meta = pair.us.create_key(Origin="EXTERNAL", MultiRegion=True)["KeyMetadata"]
    key_id = meta["KeyId"]
    material = os.urandom(32)
    material_id = import_material(pair.us, key_id, material)["KeyMaterialId"]
    out = pair.us.replicate_key(KeyId=key_id, ReplicaRegion=OTHER_REGION)
    assert out["ReplicaKeyMetadata"]["KeyState"] == "Creating"
    assert pair.replicate() == 1
    assert _meta(pair.eu, key_id)["KeyState"] == "PendingImport"
    eu_arn = out["ReplicaKeyMetadata"]["Arn"]
    return ImportedSet(key_id, meta["Arn"], eu_arn, material, material_id)


def _complete(pair: Pair, **members: Any) -> ImportedSet:
    """The same set once the replica has the primary's material too."""
    mrk = _replicated(pair)
    import_material(pair.eu, mrk.key_id, mrk.material, **members)
    return mrk


def test_replica_of_imported_material_is_pending_import_without_material(pair: Pair) -> None:
    mrk = _replicated(pair)
    replica = _meta(pair.eu, mrk.key_id)
    assert replica["KeyState"] == "PendingImport" and replica["Enabled"] is False
    assert replica["Origin"] == "EXTERNAL"
    assert replica["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    assert "ExpirationModel" not in replica and "ValidTo" not in replica
    assert replica["CurrentKeyMaterialId"] == mrk.material_id
    assert pair.rows(mrk.eu_arn) == []
    assert stored_versions(pair.app.database_url, mrk.eu_arn) == [(1, "CURRENT", "PENDING_IMPORT")]
    assert_kms_error(
        "KMSInvalidStateException",
        pair.eu.encrypt,
        KeyId=mrk.key_id,
        Plaintext=b"x",
        message=f"{mrk.eu_arn} is pending import.",
    )
    blob = pair.us.encrypt(KeyId=mrk.key_id, Plaintext=b"primary only")["CiphertextBlob"]
    assert_kms_error(
        "KMSInvalidStateException",
        pair.eu.decrypt,
        CiphertextBlob=blob,
        message=f"{mrk.eu_arn} is pending import.",
    )
    assert _meta(pair.us, mrk.key_id)["KeyState"] == "Enabled"


def test_replica_takes_the_primarys_material_and_ciphertexts_cross_regions(pair: Pair) -> None:
    mrk = _replicated(pair)
    before = pair.us.encrypt(KeyId=mrk.key_id, Plaintext=b"from us")["CiphertextBlob"]
    valid_to = pair.app.clock() + timedelta(days=30)
    out = import_material(
        pair.eu, mrk.key_id, mrk.material, ExpirationModel=EXPIRES, ValidTo=valid_to
    )
    assert out["KeyId"] == mrk.eu_arn and out["KeyMaterialId"] == mrk.material_id
    replica = _meta(pair.eu, mrk.key_id)
    assert replica["KeyState"] == "Enabled"
    assert replica["CurrentKeyMaterialId"] == mrk.material_id
    # Each key's import has its own expiry.
    assert replica["ExpirationModel"] == EXPIRES
    assert abs((replica["ValidTo"] - valid_to).total_seconds()) < 1
    primary = _meta(pair.us, mrk.key_id)
    assert primary["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"
    assert "ValidTo" not in primary
    # Each key holds its own wrapped copy.
    ((_, us_wrapped),) = pair.rows(mrk.us_arn)
    ((_, eu_wrapped),) = pair.rows(mrk.eu_arn)
    assert us_wrapped != eu_wrapped and mrk.material not in eu_wrapped
    # Ciphertexts of either Region decrypt in the other.
    assert pair.eu.decrypt(CiphertextBlob=before)["Plaintext"] == b"from us"
    after = pair.eu.encrypt(KeyId=mrk.key_id, Plaintext=b"from eu")["CiphertextBlob"]
    opened = pair.us.decrypt(CiphertextBlob=after)
    assert opened["Plaintext"] == b"from eu" and opened["KeyMaterialId"] == mrk.material_id


def test_replica_refuses_other_material_and_new_material(pair: Pair) -> None:
    mrk = _replicated(pair)
    assert_kms_error(
        "IncorrectKeyMaterialException",
        functools.partial(import_material, pair.eu, mrk.key_id, os.urandom(32)),
        message=f"The key material is not key material previously imported into {mrk.eu_arn}.",
    )
    assert_kms_error(
        "UnsupportedOperationException",
        functools.partial(
            import_material,
            pair.eu,
            mrk.key_id,
            mrk.material,
            ImportType="NEW_KEY_MATERIAL",
            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
        ),
    )
    assert _meta(pair.eu, mrk.key_id)["KeyState"] == "PendingImport"
    assert pair.rows(mrk.eu_arn) == []
    # The same material as a single-Region key's is no material of this set either.
    single = pair.eu.create_key(Origin="EXTERNAL")["KeyMetadata"]
    other_id = import_material(pair.eu, single["KeyId"], mrk.material)["KeyMaterialId"]
    assert other_id != mrk.material_id


def test_deleting_a_replicas_material_leaves_the_primary_usable(pair: Pair) -> None:
    mrk = _complete(pair)
    blob = pair.us.encrypt(KeyId=mrk.key_id, Plaintext=b"kept")["CiphertextBlob"]
    ((_, eu_wrapped),) = pair.rows(mrk.eu_arn)

    out = pair.eu.delete_imported_key_material(KeyId=mrk.key_id)
    assert out["KeyId"] == mrk.eu_arn and out["KeyMaterialId"] == mrk.material_id
    assert _meta(pair.eu, mrk.key_id)["KeyState"] == "PendingImport"
    assert pair.rows(mrk.eu_arn) == []
    assert eu_wrapped not in [w for _, w in pair.rows(mrk.us_arn)]
    assert_kms_error(
        "KMSInvalidStateException",
        pair.eu.decrypt,
        CiphertextBlob=blob,
        message=f"{mrk.eu_arn} is pending import.",
    )
    primary = _meta(pair.us, mrk.key_id)
    assert primary["KeyState"] == "Enabled" and len(pair.rows(mrk.us_arn)) == 1
    assert pair.us.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"
    pair.us.encrypt(KeyId=mrk.key_id, Plaintext=b"still")

    # Re-importing brings the replica back.
    import_material(pair.eu, mrk.key_id, mrk.material)
    assert pair.eu.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"


def test_deleting_the_primarys_material_leaves_the_replica_usable(pair: Pair) -> None:
    mrk = _complete(pair)
    blob = pair.eu.encrypt(KeyId=mrk.key_id, Plaintext=b"kept")["CiphertextBlob"]
    pair.us.delete_imported_key_material(KeyId=mrk.key_id)
    assert _meta(pair.us, mrk.key_id)["KeyState"] == "PendingImport"
    assert pair.rows(mrk.us_arn) == []
    assert_kms_error(
        "KMSInvalidStateException",
        pair.us.encrypt,
        KeyId=mrk.key_id,
        Plaintext=b"x",
        message=f"{mrk.us_arn} is pending import.",
    )
    assert _meta(pair.eu, mrk.key_id)["KeyState"] == "Enabled"
    assert len(pair.rows(mrk.eu_arn)) == 1
    assert pair.eu.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"


def test_each_keys_material_expires_on_its_own(pair: Pair) -> None:
    valid_to = pair.app.clock() + timedelta(days=2)
    mrk = _complete(pair, ExpirationModel=EXPIRES, ValidTo=valid_to)
    blob = pair.us.encrypt(KeyId=mrk.key_id, Plaintext=b"outlives the replica")["CiphertextBlob"]
    pair.app.clock.advance(timedelta(days=1))
    assert pair.expire() == 0
    pair.app.clock.advance(timedelta(days=1, seconds=1))
    assert pair.expire() == 1
    replica = _meta(pair.eu, mrk.key_id)
    assert replica["KeyState"] == "PendingImport"
    assert "ValidTo" not in replica and "ExpirationModel" not in replica
    assert pair.rows(mrk.eu_arn) == []
    assert _meta(pair.us, mrk.key_id)["KeyState"] == "Enabled"
    assert pair.us.decrypt(CiphertextBlob=blob)["Plaintext"] == b"outlives the replica"
    assert_kms_error(
        "KMSInvalidStateException",
        pair.eu.decrypt,
        CiphertextBlob=blob,
        message=f"{mrk.eu_arn} is pending import.",
    )


def _import_new(kms: Any, key_id: str, material: bytes) -> str:
    """NEW_KEY_MATERIAL (for on-demand rotation) into ``key_id``; its KeyMaterialId."""
    return str(
        import_material(
            kms,
            key_id,
            material,
            ImportType="NEW_KEY_MATERIAL",
            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
        )["KeyMaterialId"]
    )


def _states(kms: Any, key_id: str) -> list[tuple[str, str, str]]:
    rotations = kms.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")
    return [
        (r["KeyMaterialId"], r["KeyMaterialState"], r["ImportState"])
        for r in rotations["Rotations"]
    ]


def test_new_material_rotates_the_set_once_every_replica_has_it(pair: Pair) -> None:
    mrk = _complete(pair)
    old_blob = pair.eu.encrypt(KeyId=mrk.key_id, Plaintext=b"first")["CiphertextBlob"]
    new = os.urandom(32)
    new_id = _import_new(pair.us, mrk.key_id, new)
    waiting = "PENDING_MULTI_REGION_IMPORT_AND_ROTATION"
    assert _states(pair.us, mrk.key_id) == [
        (mrk.material_id, "CURRENT", "IMPORTED"),
        (new_id, waiting, "IMPORTED"),
    ]
    assert_kms_error("KMSInvalidStateException", pair.us.rotate_key_on_demand, KeyId=mrk.key_id)
    # The replica takes it as material of the key (EXISTING_KEY_MATERIAL, the default).
    assert import_material(pair.eu, mrk.key_id, new)["KeyMaterialId"] == new_id
    assert _states(pair.us, mrk.key_id)[1] == (new_id, "PENDING_ROTATION", "IMPORTED")
    # The replica follows its primary's rotation.
    assert_kms_error(
        "UnsupportedOperationException", pair.eu.rotate_key_on_demand, KeyId=mrk.key_id
    )
    pair.us.rotate_key_on_demand(KeyId=mrk.key_id)
    for kms in (pair.us, pair.eu):
        assert _meta(kms, mrk.key_id)["CurrentKeyMaterialId"] == new_id
        assert _meta(kms, mrk.key_id)["KeyState"] == "Enabled"
    new_blob = pair.eu.encrypt(KeyId=mrk.key_id, Plaintext=b"second")["CiphertextBlob"]
    opened = pair.us.decrypt(CiphertextBlob=new_blob)
    assert opened["Plaintext"] == b"second" and opened["KeyMaterialId"] == new_id
    assert pair.us.decrypt(CiphertextBlob=old_blob)["Plaintext"] == b"first"
    assert pair.eu.decrypt(CiphertextBlob=old_blob)["Plaintext"] == b"first"


def test_pending_material_deleted_from_the_primary_leaves_its_replicas(pair: Pair) -> None:
    mrk = _complete(pair)
    new = os.urandom(32)
    new_id = _import_new(pair.us, mrk.key_id, new)
    import_material(pair.eu, mrk.key_id, new)
    assert len(pair.rows(mrk.eu_arn)) == 2
    pair.us.delete_imported_key_material(KeyId=mrk.key_id, KeyMaterialId=new_id)
    assert [v for v, _ in pair.rows(mrk.eu_arn)] == [1]
    assert [v for v, _, _ in stored_versions(pair.app.database_url, mrk.eu_arn)] == [1]
    assert _states(pair.us, mrk.key_id) == [(mrk.material_id, "CURRENT", "IMPORTED")]
    for kms in (pair.us, pair.eu):
        assert _meta(kms, mrk.key_id)["KeyState"] == "Enabled"


def test_a_replica_made_while_material_is_pending_awaits_it_too(pair: Pair) -> None:
    meta = pair.us.create_key(Origin="EXTERNAL", MultiRegion=True)["KeyMetadata"]
    key_id = meta["KeyId"]
    first = os.urandom(32)
    new = os.urandom(32)
    import_material(pair.us, key_id, first)
    new_id = _import_new(pair.us, key_id, new)
    assert _states(pair.us, key_id)[1][1] == "PENDING_ROTATION"
    pair.us.replicate_key(KeyId=key_id, ReplicaRegion=OTHER_REGION)
    pair.replicate()
    assert _states(pair.us, key_id)[1][1] == "PENDING_MULTI_REGION_IMPORT_AND_ROTATION"
    import_material(pair.eu, key_id, first)
    assert _meta(pair.eu, key_id)["KeyState"] == "Enabled"
    import_material(pair.eu, key_id, new)
    assert _states(pair.us, key_id)[1][1] == "PENDING_ROTATION"
    pair.us.rotate_key_on_demand(KeyId=key_id)
    assert _meta(pair.eu, key_id)["CurrentKeyMaterialId"] == new_id


def test_update_primary_region_keeps_each_keys_imported_material(pair: Pair) -> None:
    mrk = _replicated(pair)
    # A replica still pending import cannot become the primary.
    assert_kms_error(
        "KMSInvalidStateException",
        pair.us.update_primary_region,
        KeyId=mrk.key_id,
        PrimaryRegion=OTHER_REGION,
        message=f"{mrk.eu_arn} is pending import.",
    )
    import_material(pair.eu, mrk.key_id, mrk.material)
    pair.us.update_primary_region(KeyId=mrk.key_id, PrimaryRegion=OTHER_REGION)
    assert _states(pair.eu, mrk.key_id) == [(mrk.material_id, "CURRENT", "IMPORTED")]
    # The old primary's material is still its own: erasing it leaves the new primary be.
    pair.us.delete_imported_key_material(KeyId=mrk.key_id)
    assert _meta(pair.us, mrk.key_id)["KeyState"] == "PendingImport"
    assert pair.rows(mrk.us_arn) == [] and len(pair.rows(mrk.eu_arn)) == 1
    blob = pair.eu.encrypt(KeyId=mrk.key_id, Plaintext=b"moved")["CiphertextBlob"]
    import_material(pair.us, mrk.key_id, mrk.material)
    assert pair.us.decrypt(CiphertextBlob=blob)["Plaintext"] == b"moved"


def test_hmac_replica_takes_the_same_secret_and_verifies_the_primarys_macs(pair: Pair) -> None:
    key_id = pair.us.create_key(
        Origin="EXTERNAL",
        MultiRegion=True,
        KeySpec="HMAC_256",
        KeyUsage="GENERATE_VERIFY_MAC",
    )["KeyMetadata"]["KeyId"]
    secret = os.urandom(32)
    import_material(pair.us, key_id, secret)
    pair.us.replicate_key(KeyId=key_id, ReplicaRegion=OTHER_REGION)
    pair.replicate()
    assert _meta(pair.eu, key_id)["KeyState"] == "PendingImport"
    assert_kms_error(
        "IncorrectKeyMaterialException",
        functools.partial(import_material, pair.eu, key_id, os.urandom(32)),
    )
    import_material(pair.eu, key_id, secret)
    mac = pair.us.generate_mac(KeyId=key_id, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert pair.eu.verify_mac(KeyId=key_id, Message=b"m", MacAlgorithm="HMAC_SHA_256", Mac=mac)[
        "MacValid"
    ]


def test_pending_material_stops_waiting_for_a_deleted_replica(pair: Pair) -> None:
    mrk = _complete(pair)
    new_id = _import_new(pair.us, mrk.key_id, os.urandom(32))
    waiting = "PENDING_MULTI_REGION_IMPORT_AND_ROTATION"
    assert _states(pair.us, mrk.key_id)[1] == (new_id, waiting, "IMPORTED")
    pair.eu.schedule_key_deletion(KeyId=mrk.key_id, PendingWindowInDays=7)
    pair.app.clock.advance(timedelta(days=7, seconds=1))
    assert pair.delete() == 1
    assert _states(pair.us, mrk.key_id)[1] == (new_id, "PENDING_ROTATION", "IMPORTED")
    pair.us.rotate_key_on_demand(KeyId=mrk.key_id)
    assert _meta(pair.us, mrk.key_id)["CurrentKeyMaterialId"] == new_id
