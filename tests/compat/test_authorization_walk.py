"""The authorization walk (issue 10): every operation of the KMS model that acts on an
existing key, run as a principal whose identity policy allows ``kms:*`` on ``*``, against a
key whose policy denies that principal everything when ``aws:ResourceTag/env`` is ``prod``
(the tag variant) or when ``kms:ResourceAliases`` matches ``alias/prod-*`` (the alias variant).

On a key with the tag (alias) every operation is refused with AccessDeniedException for the
explicit Deny and changes nothing the admin can see; on a key with the same policy and
``env=dev`` (an ``alias/dev-*`` alias) the same call succeeds, so the condition is the cause.
In AWS, aws:ResourceTag/<k> and kms:ResourceAliases apply to every action on the key resource
and an explicit Deny wins ("ABAC for AWS KMS"; IAM "Policy evaluation logic").

The walk reads ``domain.operations``: an operation whose row says ``Scope.KEY`` needs a
scenario here (UpdateAlias has two: the key the alias leaves, and the one it joins), or
``test_the_walk_covers_every_key_operation`` fails.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from botocore import xform_name
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from strongroom.domain.operations import OPERATIONS, Operation, Scope

from ._byok import NO_EXPIRY, import_material, wrap
from ._support import (
    ACCOUNT,
    ALL_KMS,
    OTHER_REGION,
    eventually,
    new_principal,
    unique_alias,
)

pytestmark = pytest.mark.compat

Op = Operation

ROOT = {
    "Sid": "Enable IAM User Permissions",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "kms:*",
    "Resource": "*",
}


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


# -- the two variants: the Deny's condition, and how a key is marked prod (or not) ----------


@dataclass(frozen=True)
class Variant:
    condition: dict[str, Any]
    mark: Callable[[Any, str, bool], None]
    """``mark(admin, key_id, prod)``: give the key the value the condition matches (prod) or
    one it does not."""


def _tag(admin: Any, key_id: str, prod: bool) -> None:
    admin.tag_resource(
        KeyId=key_id, Tags=[{"TagKey": "env", "TagValue": "prod" if prod else "dev"}]
    )


def _alias(admin: Any, key_id: str, prod: bool) -> None:
    admin.create_alias(AliasName=unique_alias("prod" if prod else "dev"), TargetKeyId=key_id)


VARIANTS = {
    "tag": Variant({"StringEquals": {"aws:ResourceTag/env": "prod"}}, _tag),
    "alias": Variant({"ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/prod-*"}}, _alias),
}


def _walk_policy(principal_arn: str, variant: Variant) -> str:
    """The default key policy and a Deny of everything to ``principal_arn`` on prod keys."""
    return _policy(
        ROOT,
        {
            "Sid": "No prod keys for the walker",
            "Effect": "Deny",
            "Principal": {"AWS": principal_arn},
            "Action": "kms:*",
            "Resource": "*",
            "Condition": variant.condition,
        },
    )


# -- the keys the operations take ---------------------------------------------------------

KINDS: dict[str, dict[str, Any]] = {
    "symmetric": {},
    "signing": {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"},
    "hmac": {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"},
    "agreement": {"KeySpec": "ECC_NIST_P256", "KeyUsage": "KEY_AGREEMENT"},
    "kem": {"KeySpec": "ML_KEM_768", "KeyUsage": "ENCAPSULATE_DECAPSULATE"},
    "external": {"Origin": "EXTERNAL"},
    "multi-region": {"MultiRegion": True},
}


@dataclass(frozen=True)
class Subject:
    """The key under test (made by the admin with the walk's policy) and admin clients."""

    admin: Any
    admin_eu: Any
    key: dict[str, Any]

    @property
    def arn(self) -> str:
        return str(self.key["Arn"])

    def spare_key(self) -> str:
        """The ARN of another key, with the default policy."""
        return str(self.admin.create_key(Description="walk spare")["KeyMetadata"]["Arn"])

    def alias_of(self, key_id: str) -> str:
        name = unique_alias("walk")
        self.admin.create_alias(AliasName=name, TargetKeyId=key_id)
        return name

    def grant(self) -> str:
        return str(
            self.admin.create_grant(
                KeyId=self.arn,
                GranteePrincipal=f"arn:aws:iam::{ACCOUNT}:root",
                Operations=["Decrypt"],
            )["GrantId"]
        )


Prepare = Callable[[Subject], dict[str, Any]]


@dataclass(frozen=True)
class Scenario:
    """One call of an operation: the key it takes, its parameters (``prepare`` runs as the
    admin and may set the key up first), and whether the allowed call changes what
    ``_state`` reads (a read or cryptographic operation changes nothing)."""

    kind: str
    prepare: Prepare
    changes: bool = False
    name: str = ""


def _key_id(s: Subject) -> dict[str, Any]:
    return {"KeyId": s.arn}


def _blob(s: Subject) -> bytes:
    return bytes(s.admin.encrypt(KeyId=s.arn, Plaintext=b"walk")["CiphertextBlob"])


def _peer_public_key() -> bytes:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    )


def _scheduled(s: Subject) -> dict[str, Any]:
    s.admin.schedule_key_deletion(KeyId=s.arn, PendingWindowInDays=7)
    return _key_id(s)


def _disabled(s: Subject) -> dict[str, Any]:
    s.admin.disable_key(KeyId=s.arn)
    return _key_id(s)


def _rotating(s: Subject) -> dict[str, Any]:
    s.admin.enable_key_rotation(KeyId=s.arn)
    return _key_id(s)


def _imported(s: Subject) -> dict[str, Any]:
    import_material(s.admin, s.arn, os.urandom(32))
    return _key_id(s)


def _import_request(s: Subject) -> dict[str, Any]:
    """ImportKeyMaterial's parameters, wrapped by the admin with its own import token."""
    params = s.admin.get_parameters_for_import(
        KeyId=s.arn, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
    )
    return {
        "KeyId": s.arn,
        "ImportToken": params["ImportToken"],
        "EncryptedKeyMaterial": wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32)),
        **NO_EXPIRY,
    }


def _replicated(s: Subject) -> dict[str, Any]:
    """A replica in eu-west-1 (default policy), Enabled before the walk looks."""
    s.admin.replicate_key(KeyId=s.arn, ReplicaRegion=OTHER_REGION)

    def enabled() -> None:
        meta = s.admin_eu.describe_key(KeyId=s.key["KeyId"])["KeyMetadata"]
        assert meta["KeyState"] == "Enabled", meta["KeyState"]

    eventually(enabled, 10.0)
    return {"KeyId": s.arn, "PrimaryRegion": OTHER_REGION}


def _signed(s: Subject) -> dict[str, Any]:
    request = {"KeyId": s.arn, "Message": b"walk", "SigningAlgorithm": "ECDSA_SHA_256"}
    return {**request, "Signature": s.admin.sign(**request)["Signature"]}


def _maced(s: Subject) -> dict[str, Any]:
    request = {"KeyId": s.arn, "Message": b"walk", "MacAlgorithm": "HMAC_SHA_256"}
    return {**request, "Mac": s.admin.generate_mac(**request)["Mac"]}


def _encapsulated(s: Subject) -> dict[str, Any]:
    out = s.admin.encapsulate(KeyId=s.arn, EncapsulationAlgorithm="ML_KEM")
    return {
        "KeyId": s.arn,
        "SharedSecretCiphertextBlob": out["SharedSecretCiphertextBlob"],
        "EncapsulationAlgorithm": "ML_KEM",
    }


def _granted(s: Subject) -> dict[str, Any]:
    s.grant()
    return _key_id(s)


def _tagged(s: Subject) -> dict[str, Any]:
    s.admin.tag_resource(KeyId=s.arn, Tags=[{"TagKey": "team", "TagValue": "walk"}])
    return {"KeyId": s.arn, "TagKeys": ["team"]}


def _one(kind: str, prepare: Prepare, *, changes: bool = False) -> tuple[Scenario, ...]:
    return (Scenario(kind, prepare, changes),)


SYMMETRIC_READ = _one("symmetric", _key_id)

WALK: dict[Operation, tuple[Scenario, ...]] = {
    Op.CANCEL_KEY_DELETION: _one("symmetric", _scheduled, changes=True),
    Op.CREATE_ALIAS: _one(
        "symmetric",
        lambda s: {"AliasName": unique_alias("walk"), "TargetKeyId": s.arn},
        changes=True,
    ),
    Op.CREATE_GRANT: _one(
        "symmetric",
        lambda s: {
            "KeyId": s.arn,
            "GranteePrincipal": f"arn:aws:iam::{ACCOUNT}:root",
            "Operations": ["Encrypt"],
        },
        changes=True,
    ),
    Op.DECAPSULATE: _one("kem", _encapsulated),
    Op.DECRYPT: _one("symmetric", lambda s: {"CiphertextBlob": _blob(s)}),
    Op.DELETE_ALIAS: _one("symmetric", lambda s: {"AliasName": s.alias_of(s.arn)}, changes=True),
    Op.DELETE_IMPORTED_KEY_MATERIAL: _one("external", _imported, changes=True),
    Op.DERIVE_SHARED_SECRET: _one(
        "agreement",
        lambda s: {
            "KeyId": s.arn,
            "KeyAgreementAlgorithm": "ECDH",
            "PublicKey": _peer_public_key(),
        },
    ),
    Op.DESCRIBE_KEY: SYMMETRIC_READ,
    Op.DISABLE_KEY: _one("symmetric", _key_id, changes=True),
    Op.DISABLE_KEY_ROTATION: _one("symmetric", _rotating, changes=True),
    Op.ENABLE_KEY: _one("symmetric", _disabled, changes=True),
    Op.ENABLE_KEY_ROTATION: _one("symmetric", _key_id, changes=True),
    Op.ENCAPSULATE: _one("kem", lambda s: {"KeyId": s.arn, "EncapsulationAlgorithm": "ML_KEM"}),
    Op.ENCRYPT: _one("symmetric", lambda s: {"KeyId": s.arn, "Plaintext": b"walk"}),
    Op.GENERATE_DATA_KEY: _one("symmetric", lambda s: {"KeyId": s.arn, "KeySpec": "AES_256"}),
    Op.GENERATE_DATA_KEY_PAIR: _one(
        "symmetric", lambda s: {"KeyId": s.arn, "KeyPairSpec": "ECC_NIST_P256"}
    ),
    Op.GENERATE_DATA_KEY_PAIR_WITHOUT_PLAINTEXT: _one(
        "symmetric", lambda s: {"KeyId": s.arn, "KeyPairSpec": "ECC_NIST_P256"}
    ),
    Op.GENERATE_DATA_KEY_WITHOUT_PLAINTEXT: _one(
        "symmetric", lambda s: {"KeyId": s.arn, "NumberOfBytes": 16}
    ),
    Op.GENERATE_MAC: _one(
        "hmac", lambda s: {"KeyId": s.arn, "Message": b"walk", "MacAlgorithm": "HMAC_SHA_256"}
    ),
    Op.GET_KEY_LAST_USAGE: SYMMETRIC_READ,
    Op.GET_KEY_POLICY: _one("symmetric", lambda s: {"KeyId": s.arn, "PolicyName": "default"}),
    Op.GET_KEY_ROTATION_STATUS: SYMMETRIC_READ,
    Op.GET_PARAMETERS_FOR_IMPORT: _one(
        "external",
        lambda s: {
            "KeyId": s.arn,
            "WrappingAlgorithm": "RSAES_OAEP_SHA_256",
            "WrappingKeySpec": "RSA_2048",
        },
    ),
    Op.GET_PUBLIC_KEY: _one("signing", _key_id),
    Op.IMPORT_KEY_MATERIAL: _one("external", _import_request, changes=True),
    Op.LIST_GRANTS: _one("symmetric", _granted),
    Op.LIST_KEY_POLICIES: SYMMETRIC_READ,
    Op.LIST_KEY_ROTATIONS: SYMMETRIC_READ,
    Op.LIST_RESOURCE_TAGS: SYMMETRIC_READ,
    # The attack the Deny is there for: the walker writing itself out of the key policy.
    Op.PUT_KEY_POLICY: _one(
        "symmetric",
        lambda s: {"KeyId": s.arn, "PolicyName": "default", "Policy": _policy(ROOT)},
        changes=True,
    ),
    Op.RE_ENCRYPT: _one(
        "symmetric", lambda s: {"CiphertextBlob": _blob(s), "DestinationKeyId": s.arn}
    ),
    Op.REPLICATE_KEY: _one(
        "multi-region", lambda s: {"KeyId": s.arn, "ReplicaRegion": OTHER_REGION}, changes=True
    ),
    Op.RETIRE_GRANT: _one(
        "symmetric", lambda s: {"KeyId": s.arn, "GrantId": s.grant()}, changes=True
    ),
    Op.REVOKE_GRANT: _one(
        "symmetric", lambda s: {"KeyId": s.arn, "GrantId": s.grant()}, changes=True
    ),
    Op.ROTATE_KEY_ON_DEMAND: _one("symmetric", _key_id, changes=True),
    Op.SCHEDULE_KEY_DELETION: _one(
        "symmetric", lambda s: {"KeyId": s.arn, "PendingWindowInDays": 7}, changes=True
    ),
    Op.SIGN: _one(
        "signing",
        lambda s: {"KeyId": s.arn, "Message": b"walk", "SigningAlgorithm": "ECDSA_SHA_256"},
    ),
    Op.TAG_RESOURCE: _one(
        "symmetric",
        lambda s: {"KeyId": s.arn, "Tags": [{"TagKey": "team", "TagValue": "walk"}]},
        changes=True,
    ),
    Op.UNTAG_RESOURCE: _one("symmetric", _tagged, changes=True),
    # UpdateAlias needs kms:UpdateAlias on the key the alias leaves and on the one it joins.
    Op.UPDATE_ALIAS: (
        Scenario(
            "symmetric",
            lambda s: {"AliasName": s.alias_of(s.arn), "TargetKeyId": s.spare_key()},
            changes=True,
            name="from",
        ),
        Scenario(
            "symmetric",
            lambda s: {"AliasName": s.alias_of(s.spare_key()), "TargetKeyId": s.arn},
            changes=True,
            name="to",
        ),
    ),
    Op.UPDATE_KEY_DESCRIPTION: _one(
        "symmetric", lambda s: {"KeyId": s.arn, "Description": "walked"}, changes=True
    ),
    Op.UPDATE_PRIMARY_REGION: _one("multi-region", _replicated, changes=True),
    Op.VERIFY: _one("signing", _signed),
    Op.VERIFY_MAC: _one("hmac", _maced),
}

KEY_OPERATIONS = {op for op, rule in OPERATIONS.items() if rule.scope is Scope.KEY}


def test_the_walk_covers_every_key_operation() -> None:
    assert set(WALK) == KEY_OPERATIONS


CASES = [
    pytest.param(op, scenario, variant, id="-".join(filter(None, (op, scenario.name, variant))))
    for op, scenarios in sorted(WALK.items())
    for scenario in scenarios
    for variant in VARIANTS
]


# -- fixtures and the admin's view of a key -------------------------------------------------


@pytest.fixture(scope="module")
def walker(server: Any) -> dict[str, Any]:
    """A user whose identity policy allows kms:* on every resource."""
    person = new_principal(server, "walker", policy=ALL_KMS)
    eventually(lambda: person["client"].list_keys(Limit=1))
    return person


@pytest.fixture(scope="module")
def subjects(kms: Any, eu_kms: Any, walker: dict[str, Any]) -> Callable[..., Subject]:
    """``subjects(scenario, variant, prod)``: the key under test, made by the admin with the
    walk's policy and marked prod (or not). A scenario whose call changes nothing shares its
    key with the others of its kind; the rest get a fresh key each, so the walks stay
    independent."""
    shared: dict[tuple[str, str, bool], Subject] = {}

    def make(kind: str, variant: str, prod: bool) -> Subject:
        policy = _walk_policy(walker["arn"], VARIANTS[variant])
        key = kms.create_key(Policy=policy, Description="walk", **KINDS[kind])["KeyMetadata"]
        VARIANTS[variant].mark(kms, key["Arn"], prod)
        return Subject(kms, eu_kms, key)

    def subject(scenario: Scenario, variant: str, prod: bool) -> Subject:
        if scenario.changes:
            return make(scenario.kind, variant, prod)
        found = (scenario.kind, variant, prod)
        if found not in shared:
            shared[found] = make(*found)
        return shared[found]

    return subject


def _read(call: Callable[..., Any], **kwargs: Any) -> Any:
    """What ``call(**kwargs)`` answers (ResponseMetadata aside), or the error code."""
    try:
        out = call(**kwargs)
    except ClientError as e:
        return {"error": e.response["Error"]["Code"]}
    out.pop("ResponseMetadata", None)
    return out


def _state(s: Subject) -> dict[str, Any]:
    """What the admin sees of the key under test (and of its replica in eu-west-1)."""
    admin, key = s.admin, {"KeyId": s.arn}
    state = {
        "metadata": _read(admin.describe_key, **key),
        "tags": _read(admin.list_resource_tags, **key),
        "aliases": _read(admin.list_aliases, **key),
        "grants": _read(admin.list_grants, **key),
        "policy": _read(admin.get_key_policy, PolicyName="default", **key),
    }
    if s.key["KeySpec"] == "SYMMETRIC_DEFAULT":
        state["rotation"] = _read(admin.get_key_rotation_status, **key)
        state["rotations"] = _read(admin.list_key_rotations, **key)
    if s.key["MultiRegion"]:
        state["replica"] = _read(s.admin_eu.describe_key, KeyId=s.key["KeyId"])
    return state


def _call(client: Any, operation: Operation, params: dict[str, Any]) -> Any:
    return getattr(client, xform_name(operation))(**params)


def _refused(client: Any, operation: Operation, params: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ClientError) as info:
        _call(client, operation, params)
    error: dict[str, str] = info.value.response["Error"]
    return error


# -- the walks ------------------------------------------------------------------------------


@pytest.mark.parametrize(("operation", "scenario", "variant"), CASES)
def test_deny_on_a_prod_key_refuses_the_operation_and_changes_nothing(
    subjects: Callable[..., Subject],
    walker: dict[str, Any],
    operation: Operation,
    scenario: Scenario,
    variant: str,
) -> None:
    s = subjects(scenario, variant, prod=True)
    params = scenario.prepare(s)
    before = _state(s)
    error = _refused(walker["client"], operation, params)
    assert error["Code"] == "AccessDeniedException", error
    assert error["Message"].startswith(
        f"User: {walker['arn']} is not authorized to perform: kms:"
    ), error
    assert error["Message"].endswith(
        f"on resource: {s.arn} with an explicit deny in a resource-based policy"
    ), error
    assert _state(s) == before


@pytest.mark.parametrize(("operation", "scenario", "variant"), CASES)
def test_the_same_policy_on_another_key_allows_the_operation(
    subjects: Callable[..., Subject],
    walker: dict[str, Any],
    operation: Operation,
    scenario: Scenario,
    variant: str,
) -> None:
    s = subjects(scenario, variant, prod=False)
    params = scenario.prepare(s)
    before = _state(s) if scenario.changes else None
    _call(walker["client"], operation, params)
    if scenario.changes:
        assert _state(s) != before  # the call did what it is for
