"""Seed files are parsed into checked entries, or refused with the entry and the rule named."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from strongroom.domain.enums import KeySpec, KeyUsage
from strongroom.domain.models import Tag
from strongroom.services.seed_file import SeedError, SeedFile, parse_seed

pytestmark = pytest.mark.unit

ACCOUNT = "111122223333"
ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
ID2 = "0000abcd-12ab-34cd-56ef-1234567890ab"
RSA_2048 = rsa.generate_private_key(65537, 2048)
P256 = ec.generate_private_key(ec.SECP256R1())


def pem(key: Any, *, fmt: Any = serialization.PrivateFormat.PKCS8, password: bytes = b"") -> str:
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return str(key.private_bytes(serialization.Encoding.PEM, fmt, encryption).decode())


def b64(n: int) -> str:
    return base64.b64encode(bytes(range(n))).decode()


def parse(document: dict[str, Any] | str) -> SeedFile:
    text = document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False)
    return parse_seed(text, default_account=ACCOUNT)


def one(**fields: Any) -> SeedFile:
    return parse({"keys": [{"id": ID, **fields}]})


def test_an_entry_with_only_an_id_is_a_symmetric_key_naming_nothing_else() -> None:
    (key,) = one().keys
    assert (key.key_id, key.account, key.region) == (ID, ACCOUNT, "us-east-1")
    assert (key.key_spec, key.key_usage) == (KeySpec.SYMMETRIC_DEFAULT, KeyUsage.ENCRYPT_DECRYPT)
    named = (key.description, key.enabled, key.material, key.aliases, key.tags, key.policy)
    assert named == (None, None, None, None, None, None)
    assert key.rotation is None and key.bypass_policy_lockout_safety_check is False
    assert key.arn == f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{ID}"
    assert key.where == f"keys[0] (id {ID})"


def test_file_region_is_the_default_and_entries_may_override_region_and_account() -> None:
    seed = parse(
        {
            "region": "eu-west-1",
            "keys": [{"id": ID}, {"id": ID2, "region": "ap-south-1", "account": "444455556666"}],
        }
    )
    assert [(k.region, k.account) for k in seed.keys] == [
        ("eu-west-1", ACCOUNT),
        ("ap-south-1", "444455556666"),
    ]


def test_named_fields_are_parsed() -> None:
    (key,) = one(
        description="orders",
        enabled=False,
        material=b64(32),
        aliases="alias/orders",
        tags={"team": "payments", "env": ""},
        rotation={"enabled": True},
        bypass_policy_lockout_safety_check=True,
    ).keys
    assert key.description == "orders" and key.enabled is False
    assert key.material is not None and key.material.value == bytes(range(32))
    assert key.aliases == ("alias/orders",)
    assert key.tags == (Tag("team", "payments"), Tag("env", ""))
    assert key.rotation is not None and (key.rotation.enabled, key.rotation.period_days) == (
        True,
        365,
    )
    assert key.bypass_policy_lockout_safety_check is True


def test_base64_material_may_be_wrapped_over_lines() -> None:
    text = f"keys:\n  - id: {ID}\n    material: |\n      {b64(32)[:20]}\n      {b64(32)[20:]}\n"
    (key,) = parse(text).keys
    assert key.material is not None and key.material.value == bytes(range(32))


@pytest.mark.parametrize(
    ("spec", "good", "bad"),
    [
        ("HMAC_224", (28, 64), (27, 65)),
        ("HMAC_256", (32, 64), (31, 65)),
        ("HMAC_384", (48, 128), (47, 129)),
        ("HMAC_512", (64, 128), (63, 129)),
    ],
)
def test_hmac_material_lengths(spec: str, good: tuple[int, int], bad: tuple[int, int]) -> None:
    for n in good:
        (key,) = one(key_spec=spec, key_usage="GENERATE_VERIFY_MAC", material=b64(n)).keys
        assert key.material is not None and len(key.material) == n
    low, high = good
    for n in bad:
        with pytest.raises(SeedError) as info:
            one(key_spec=spec, key_usage="GENERATE_VERIFY_MAC", material=b64(n))
        assert str(info.value) == (
            f"keys[0] (id {ID}): material: {spec} key material must be {low} to {high} bytes, "
            f"got {n} bytes"
        )


@pytest.mark.parametrize(
    "fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL]
)
def test_pem_material_is_stored_as_pkcs8_der(fmt: Any) -> None:
    (key,) = one(key_spec="RSA_2048", key_usage="SIGN_VERIFY", material=pem(RSA_2048, fmt=fmt)).keys
    assert key.material is not None
    loaded = serialization.load_der_private_key(key.material.value, None)
    assert loaded.private_numbers() == RSA_2048.private_numbers()  # type: ignore[union-attr]


def test_ed25519_pem_fits_its_spec() -> None:
    (key,) = one(
        key_spec="ECC_NIST_EDWARDS25519",
        key_usage="SIGN_VERIFY",
        material=pem(ed25519.Ed25519PrivateKey.generate()),
    ).keys
    assert key.material is not None


def test_policy_mapping_becomes_json_and_text_stays_as_written() -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
    (key,) = one(policy=policy).keys
    assert key.policy is not None and json.loads(key.policy) == policy
    text = json.dumps(policy)
    (key,) = one(policy=text).keys
    assert key.policy == text


def test_same_alias_in_two_regions_is_allowed() -> None:
    seed = parse(
        {
            "keys": [
                {"id": ID, "aliases": ["alias/app"]},
                {"id": ID2, "region": "eu-west-1", "aliases": ["alias/app"]},
            ]
        }
    )
    assert [k.aliases for k in seed.keys] == [("alias/app",), ("alias/app",)]


W = f"keys[0] (id {ID})"

BAD_DOCUMENTS: list[tuple[str, dict[str, Any] | str, str]] = [
    ("not yaml", "keys: [", "not valid YAML"),
    ("not a mapping", "- 1\n", "the document must be a mapping with a 'keys' list, not a list"),
    ("top-level field", {"key": []}, "the document: unknown field 'key' (allowed: keys, region)"),
    ("keys not a list", {"keys": {"id": ID}}, "keys: must be a list of keys, not a mapping"),
    ("entry not a mapping", {"keys": ["x"]}, "keys[0]: must be a mapping of fields, not a string"),
    (
        "duplicate yaml key",
        f"keys:\n  - id: {ID}\n    description: a\n    description: b\n",
        "line 4: duplicate key 'description'",
    ),
    ("bad file region", {"region": "US_EAST", "keys": []}, "region: 'US_EAST' is not a Region"),
    (
        "unknown field",
        {"keys": [{"id": ID, "descriptoin": "x"}]},
        f"{W}: unknown field 'descriptoin' (allowed: id, account, region,",
    ),
    ("missing id", {"keys": [{"description": "x"}]}, "keys[0]: id: every key needs one"),
    (
        "uppercase id",
        {"keys": [{"id": ID.upper()}]},
        f"keys[0] (id {ID.upper()}): id: '{ID.upper()}' is not a key id: a lowercase UUID, or "
        "mrk- and 32 lowercase hex digits for a multi-Region primary key",
    ),
    (
        "short multi-Region id",
        {"keys": [{"id": "mrk-1234abcd"}]},
        "keys[0] (id mrk-1234abcd): id: 'mrk-1234abcd' is not a key id",
    ),
    (
        "unquoted account",
        {"keys": [{"id": ID, "account": 444455556666}]},
        f"{W}: account: must be a string, not a number (quote it)",
    ),
    (
        "short account",
        {"keys": [{"id": ID, "account": "4444"}]},
        f"{W}: account: '4444' is not an account id: 12 digits",
    ),
    ("bad key spec", {"keys": [{"id": ID, "key_spec": "AES"}]}, f"{W}: key_spec: 'AES' is not"),
    (
        "usage missing",
        {"keys": [{"id": ID, "key_spec": "RSA_2048"}]},
        f"{W}: key_usage: You must specify a KeyUsage value for all KMS keys except for "
        "symmetric encryption keys.",
    ),
    (
        "usage incompatible",
        {"keys": [{"id": ID, "key_spec": "RSA_2048", "key_usage": "GENERATE_VERIFY_MAC"}]},
        f"{W}: key_usage: KeyUsage GENERATE_VERIFY_MAC is not compatible with KeySpec RSA_2048",
    ),
    (
        "unsupported spec",
        {"keys": [{"id": ID, "key_spec": "SM2", "key_usage": "SIGN_VERIFY"}]},
        f"{W}: key_spec: KeySpec SM2 is not supported by this server",
    ),
    (
        "description too long",
        {"keys": [{"id": ID, "description": "x" * 8193}]},
        f"{W}: description: is 8193 characters, more than 8192",
    ),
    ("enabled not a bool", {"keys": [{"id": ID, "enabled": "no way"}]}, f"{W}: enabled: must be"),
    (
        "bad base64",
        {"keys": [{"id": ID, "material": "not base64!"}]},
        f"{W}: material: is not valid base64 (key spec SYMMETRIC_DEFAULT takes base64)",
    ),
    (
        "short symmetric material",
        {"keys": [{"id": ID, "material": b64(16)}]},
        f"{W}: material: SYMMETRIC_DEFAULT key material must be 32 bytes, got 16 bytes",
    ),
    (
        "not a PEM",
        {
            "keys": [
                {"id": ID, "key_spec": "RSA_2048", "key_usage": "SIGN_VERIFY", "material": b64(32)}
            ]
        },
        f"{W}: material: is not a PEM private key (key spec RSA_2048 takes one)",
    ),
    (
        "EC PEM for RSA",
        {
            "keys": [
                {
                    "id": ID,
                    "key_spec": "RSA_2048",
                    "key_usage": "SIGN_VERIFY",
                    "material": pem(P256),
                }
            ]
        },
        f"{W}: material: the private key is an EC key on curve secp256r1, which does not fit "
        "key spec RSA_2048",
    ),
    (
        "RSA 2048 PEM for RSA 3072",
        {
            "keys": [
                {
                    "id": ID,
                    "key_spec": "RSA_3072",
                    "key_usage": "SIGN_VERIFY",
                    "material": pem(RSA_2048),
                }
            ]
        },
        f"{W}: material: the private key is a 2048-bit RSA key, which does not fit key spec "
        "RSA_3072",
    ),
    (
        "P-256 PEM for P-384",
        {
            "keys": [
                {
                    "id": ID,
                    "key_spec": "ECC_NIST_P384",
                    "key_usage": "SIGN_VERIFY",
                    "material": pem(P256),
                }
            ]
        },
        f"{W}: material: the private key is an EC key on curve secp256r1, which does not fit "
        "key spec ECC_NIST_P384",
    ),
    (
        "encrypted PEM",
        {
            "keys": [
                {
                    "id": ID,
                    "key_spec": "ECC_NIST_P256",
                    "key_usage": "SIGN_VERIFY",
                    "material": pem(P256, password=b"secret"),
                }
            ]
        },
        f"{W}: material: the PEM private key is encrypted; give it unencrypted",
    ),
    (
        "alias without prefix",
        {"keys": [{"id": ID, "aliases": ["orders"]}]},
        f'{W}: aliases[0] (orders): Alias must start with the prefix "alias/".',
    ),
    (
        "reserved alias",
        {"keys": [{"id": ID, "aliases": ["alias/aws/s3"]}]},
        f"{W}: aliases[0] (alias/aws/s3): alias/aws/s3: aliases that begin with alias/aws/ are "
        "reserved for AWS managed keys.",
    ),
    (
        "alias pattern",
        {"keys": [{"id": ID, "aliases": ["alias/ok", "alias/not ok"]}]},
        f"{W}: aliases[1] (alias/not ok): 1 validation error detected: Value 'alias/not ok' at "
        "'aliasName' failed to satisfy constraint: Member must satisfy regular expression "
        "pattern: ^[a-zA-Z0-9:/_-]+$",
    ),
    (
        "alias twice in an entry",
        {"keys": [{"id": ID, "aliases": ["alias/a", "alias/a"]}]},
        f"{W}: aliases[1]: duplicate alias alias/a",
    ),
    (
        "too many aliases",
        {"keys": [{"id": ID, "aliases": [f"alias/a{i}" for i in range(51)]}]},
        f"{W}: aliases: 51 aliases, more than 50",
    ),
    (
        "reserved tag",
        {"keys": [{"id": ID, "tags": {"aws:owner": "me"}}]},
        f"{W}: tags: Tags beginning with aws: are reserved",
    ),
    (
        "tag value not a string",
        {"keys": [{"id": ID, "tags": {"version": 2}}]},
        f"{W}: tags.version: must be a string, not a number (quote it)",
    ),
    (
        "tags as a list",
        {"keys": [{"id": ID, "tags": ["a"]}]},
        f"{W}: tags: must be a mapping of tag keys to values, not a list",
    ),
    (
        "malformed policy",
        {"keys": [{"id": ID, "policy": '{"Version": "2012-10-17", "Statement": 5}'}]},
        f"{W}: policy: MalformedPolicyDocumentException: ",
    ),
    (
        "policy not JSON",
        {"keys": [{"id": ID, "policy": "{not json"}]},
        f"{W}: policy: MalformedPolicyDocumentException: Policy document is not valid JSON",
    ),
    (
        "rotation period too short",
        {"keys": [{"id": ID, "rotation": {"enabled": True, "period_days": 30}}]},
        f"{W}: rotation.period_days: must be a whole number of days from 90 to 2560, not 30",
    ),
    (
        "rotation period too long",
        {"keys": [{"id": ID, "rotation": {"enabled": True, "period_days": 2561}}]},
        f"{W}: rotation.period_days: must be a whole number of days from 90 to 2560, not 2561",
    ),
    (
        "rotation without enabled",
        {"keys": [{"id": ID, "rotation": {"period_days": 90}}]},
        f"{W}: rotation.enabled: is required: true or false",
    ),
    (
        "rotation unknown field",
        {"keys": [{"id": ID, "rotation": {"enabled": True, "days": 90}}]},
        f"{W}: rotation: unknown field 'days' (allowed: enabled, period_days)",
    ),
    (
        "rotation of an HMAC key",
        {
            "keys": [
                {
                    "id": ID,
                    "key_spec": "HMAC_256",
                    "key_usage": "GENERATE_VERIFY_MAC",
                    "rotation": {"enabled": True},
                }
            ]
        },
        f"{W}: rotation.enabled: automatic rotation is only for SYMMETRIC_DEFAULT keys, not "
        "HMAC_256",
    ),
    (
        "duplicate key id",
        {"keys": [{"id": ID}, {"id": ID2}, {"id": ID}]},
        f"keys[2] (id {ID}): id: duplicate key id, also keys[0]",
    ),
    (
        "duplicate alias",
        {"keys": [{"id": ID, "aliases": ["alias/a"]}, {"id": ID2, "aliases": "alias/a"}]},
        f"keys[1] (id {ID2}): aliases: duplicate alias alias/a, also {W}",
    ),
]


@pytest.mark.parametrize(
    ("document", "message"),
    [pytest.param(doc, msg, id=name) for name, doc, msg in BAD_DOCUMENTS],
)
def test_bad_documents_are_refused_naming_the_entry_and_the_rule(
    document: dict[str, Any] | str, message: str
) -> None:
    with pytest.raises(SeedError) as info:
        parse(document)
    assert str(info.value).startswith(message), str(info.value)


def test_rotation_off_is_allowed_on_any_key() -> None:
    (key,) = one(
        key_spec="HMAC_256", key_usage="GENERATE_VERIFY_MAC", rotation={"enabled": False}
    ).keys
    assert key.rotation is not None and key.rotation.enabled is False


def test_an_empty_key_list_is_a_valid_seed() -> None:
    assert parse({"keys": []}).keys == ()
    assert parse({"region": "eu-west-1"}).keys == ()


def test_the_readme_example_is_a_valid_seed() -> None:
    readme = Path(__file__).resolve().parents[3] / "README.md"
    section = readme.read_text().split("## Seeding", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    seed = parse_seed(example, default_account=ACCOUNT)
    assert [(k.key_spec, k.account) for k in seed.keys] == [
        (KeySpec.SYMMETRIC_DEFAULT, ACCOUNT),
        (KeySpec.HMAC_384, ACCOUNT),
        (KeySpec.RSA_2048, "444455556666"),
    ]
    assert all(k.material is not None for k in seed.keys[:2]) and seed.keys[2].material is None
