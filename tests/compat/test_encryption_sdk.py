"""The AWS Encryption SDK for Python (4.x), unchanged, against a real server: master key
providers given a botocore session whose profile names the endpoint, messages under one
and two keys, alias ARNs, multi-Region keys across Regions, data key caching, denied
callers, the audit trail of the SDK's calls, and the keyring API of the Material
Providers Library."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
from aws_cryptographic_material_providers.mpl.models import CreateAwsKmsKeyringInput
from aws_encryption_sdk import (
    CachingCryptoMaterialsManager,
    CommitmentPolicy,
    EncryptionSDKClient,
    LocalCryptoMaterialsCache,
    StrictAwsKmsMasterKeyProvider,
)
from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError, DecryptKeyError
from aws_encryption_sdk.identifiers import USER_AGENT_SUFFIX
from aws_encryption_sdk.key_providers.kms import MRKAwareStrictAwsKmsMasterKeyProvider
from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidTag

from ._support import (
    ACCOUNT,
    ALL_KMS,
    OTHER_REGION,
    REGION,
    audit_events,
    eventually,
    new_principal,
    unique_alias,
)

pytestmark = pytest.mark.compat

CONTEXT = {"purpose": "compat", "tenant": "t-1"}
# The SDK's default suite for REQUIRE_ENCRYPT_REQUIRE_DECRYPT signs with ECDSA P-384 and
# carries the verification key in the encryption context it sends to KMS.
PUBLIC_KEY = "aws-crypto-public-key"


def sdk_session(directory: Path, endpoint: str, access_key_id: str, secret: str) -> Any:
    """A botocore session whose profile points KMS at ``endpoint`` with explicit credentials:
    the SDK takes no endpoint argument and makes one client per Region from this session."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / f"config-{access_key_id}"
    config.write_text(
        "[profile strongroom]\n"
        f"endpoint_url = {endpoint}\n"
        f"region = {REGION}\n"
        f"aws_access_key_id = {access_key_id}\n"
        f"aws_secret_access_key = {secret}\n"
        "max_attempts = 1\n"
    )
    session = botocore.session.Session(profile="strongroom")
    session.set_config_variable("config_file", str(config))
    return session


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sdk-sessions")


@pytest.fixture(scope="module")
def session(server: Any, sessions: Path) -> Any:
    """The admin's botocore session for the SDK."""
    return sdk_session(sessions, server.endpoint, server.access_key_id, server.secret_access_key)


@pytest.fixture(scope="module")
def sdk() -> EncryptionSDKClient:
    return EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)


def strict(session: Any, *arns: str) -> StrictAwsKmsMasterKeyProvider:
    return StrictAwsKmsMasterKeyProvider(key_ids=list(arns), botocore_session=session)


def edk_arns(header: Any) -> list[str]:
    """The key ARNs the message's encrypted data keys name, sorted."""
    return sorted(edk.key_provider.key_info.decode() for edk in header.encrypted_data_keys)


def test_bytes_round_trip_returns_the_context(
    sdk: EncryptionSDKClient, session: Any, key: dict[str, Any]
) -> None:
    provider = strict(session, key["Arn"])
    message, header = sdk.encrypt(
        source=b"secret", key_provider=provider, encryption_context=CONTEXT
    )
    assert edk_arns(header) == [key["Arn"]]
    plaintext, decrypted = sdk.decrypt(source=message, key_provider=provider)
    assert plaintext == b"secret"
    assert decrypted.encryption_context.items() >= CONTEXT.items()
    assert PUBLIC_KEY in decrypted.encryption_context


def test_stream_round_trip_of_several_megabytes(
    sdk: EncryptionSDKClient, session: Any, key: dict[str, Any]
) -> None:
    provider = strict(session, key["Arn"])
    data = os.urandom(3 * 1024 * 1024 + 17)
    message = io.BytesIO()
    with sdk.stream(
        mode="e", source=io.BytesIO(data), key_provider=provider, encryption_context=CONTEXT
    ) as encryptor:
        chunks = 0
        for chunk in encryptor:
            message.write(chunk)
            chunks += 1
    assert chunks > 1
    digest = hashlib.sha256()
    message.seek(0)
    with sdk.stream(mode="d", source=message, key_provider=provider) as decryptor:
        for chunk in decryptor:
            digest.update(chunk)
        context = decryptor.header.encryption_context
    assert digest.digest() == hashlib.sha256(data).digest()
    assert context.items() >= CONTEXT.items()


def test_tampered_message_does_not_decrypt(
    sdk: EncryptionSDKClient, session: Any, key: dict[str, Any]
) -> None:
    provider = strict(session, key["Arn"])
    message, _ = sdk.encrypt(source=os.urandom(10_000), key_provider=provider)
    tampered = bytearray(message)
    tampered[len(message) // 2] ^= 0x01  # a byte of the framed body
    with pytest.raises(InvalidTag):
        sdk.decrypt(source=bytes(tampered), key_provider=provider)


def test_message_under_two_keys_decrypts_with_either(
    sdk: EncryptionSDKClient, session: Any, kms: Any
) -> None:
    first, second = (kms.create_key(Description="sdk")["KeyMetadata"] for _ in range(2))
    message, header = sdk.encrypt(
        source=b"two keys", key_provider=strict(session, first["Arn"], second["Arn"])
    )
    assert edk_arns(header) == sorted([first["Arn"], second["Arn"]])
    kms.disable_key(KeyId=first["KeyId"])
    assert (
        sdk.decrypt(source=message, key_provider=strict(session, second["Arn"]))[0] == b"two keys"
    )
    both = strict(session, first["Arn"], second["Arn"])
    assert sdk.decrypt(source=message, key_provider=both)[0] == b"two keys"
    with pytest.raises(DecryptKeyError):
        sdk.decrypt(source=message, key_provider=strict(session, first["Arn"]))


def test_key_given_by_alias_arn_encrypts_under_the_key_arn(
    sdk: EncryptionSDKClient, session: Any, kms: Any, key: dict[str, Any]
) -> None:
    alias = unique_alias("sdk")
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    alias_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:{alias}"
    message, header = sdk.encrypt(source=b"by alias", key_provider=strict(session, alias_arn))
    # GenerateDataKey answers the key ARN, which the message records; the SDK decrypts
    # only with key ARNs.
    assert edk_arns(header) == [key["Arn"]]
    assert sdk.decrypt(source=message, key_provider=strict(session, key["Arn"]))[0] == b"by alias"


def test_multi_region_key_decrypts_with_its_replica_in_another_region(
    sdk: EncryptionSDKClient, session: Any, server: Any, kms: Any, eu_kms: Any
) -> None:
    primary = kms.create_key(MultiRegion=True, Description="sdk mrk")["KeyMetadata"]
    kms.replicate_key(KeyId=primary["KeyId"], ReplicaRegion=OTHER_REGION)
    replica_arn = primary["Arn"].replace(f":{REGION}:", f":{OTHER_REGION}:")
    eventually(lambda: _assert_enabled(eu_kms.describe_key(KeyId=primary["KeyId"])["KeyMetadata"]))
    message, _ = sdk.encrypt(
        source=b"across regions",
        key_provider=MRKAwareStrictAwsKmsMasterKeyProvider(
            key_ids=[primary["Arn"]], botocore_session=session
        ),
        encryption_context=CONTEXT,
    )
    in_eu = MRKAwareStrictAwsKmsMasterKeyProvider(key_ids=[replica_arn], botocore_session=session)
    assert sdk.decrypt(source=message, key_provider=in_eu)[0] == b"across regions"
    _, events = audit_events(server, "--event-name", "Decrypt", "--key", replica_arn)
    assert [e["awsRegion"] for e in events] == [OTHER_REGION]


def _assert_enabled(meta: dict[str, Any]) -> None:
    assert meta["KeyState"] == "Enabled", meta["KeyState"]


def test_data_key_caching_makes_one_generate_data_key_call(
    sdk: EncryptionSDKClient, session: Any, server: Any, key: dict[str, Any]
) -> None:
    cmm = CachingCryptoMaterialsManager(
        master_key_provider=strict(session, key["Arn"]),
        cache=LocalCryptoMaterialsCache(capacity=10),
        max_age=60.0,
        max_messages_encrypted=10,
    )
    messages = [
        sdk.encrypt(source=f"m{i}".encode(), materials_manager=cmm, encryption_context=CONTEXT)[0]
        for i in range(5)
    ]
    assert [sdk.decrypt(source=m, materials_manager=cmm)[0] for m in messages] == [
        f"m{i}".encode() for i in range(5)
    ]
    calls = {
        name: audit_events(server, "--event-name", name, "--key", key["Arn"])[1]
        for name in ("GenerateDataKey", "Decrypt")
    }
    assert [len(events) for events in calls.values()] == [1, 1]


@pytest.fixture(scope="module")
def no_decrypt(server: Any, sessions: Path) -> dict[str, Any]:
    """A user whose identity policy allows kms:* but denies kms:Decrypt, with an SDK session."""
    deny = {"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"}
    user = new_principal(
        server, "nodecrypt", policy={**ALL_KMS, "Statement": [*ALL_KMS["Statement"], deny]}
    )
    session = sdk_session(sessions, server.endpoint, user["AccessKeyId"], user["SecretAccessKey"])
    return {**user, "session": session}


def _key_denying_decrypt_to(kms: Any, principal_arn: str) -> dict[str, Any]:
    """A key whose policy trusts the account but denies kms:Decrypt to ``principal_arn``."""
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
                "Principal": {"AWS": principal_arn},
                "Action": "kms:Decrypt",
                "Resource": "*",
            },
        ],
    }
    return kms.create_key(Policy=json.dumps(policy))["KeyMetadata"]  # type: ignore[no-any-return]


@pytest.fixture(params=["identity policy", "key policy"])
def denied(
    request: pytest.FixtureRequest,
    server: Any,
    sessions: Path,
    no_decrypt: dict[str, Any],
    kms: Any,
) -> dict[str, Any]:
    """A caller denied kms:Decrypt on a key, by its identity policy or by the key policy:
    {"key": KeyMetadata, "session": its SDK session, "arn": its ARN}."""
    if request.param == "identity policy":
        key = request.getfixturevalue("key")
        return {"key": key, "session": no_decrypt["session"], "arn": no_decrypt["arn"]}
    user = new_principal(server, "keydenied", policy=ALL_KMS)
    session = sdk_session(sessions, server.endpoint, user["AccessKeyId"], user["SecretAccessKey"])
    key = _key_denying_decrypt_to(kms, user["arn"])
    return {"key": key, "session": session, "arn": user["arn"]}


def test_caller_denied_decrypt_cannot_decrypt(
    sdk: EncryptionSDKClient,
    session: Any,
    server: Any,
    denied: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    arn = denied["key"]["Arn"]
    message, _ = sdk.encrypt(source=b"not for you", key_provider=strict(session, arn))
    with caplog.at_level(logging.ERROR), pytest.raises(DecryptKeyError):
        sdk.decrypt(source=message, key_provider=strict(denied["session"], arn))
    # The master key logs the KMS error it turns into DecryptKeyError.
    errors = [r.exc_info[1] for r in caplog.records if r.exc_info]
    codes = [e.response["Error"]["Code"] for e in errors if isinstance(e, ClientError)]
    assert codes == ["AccessDeniedException"]
    _, events = audit_events(
        server, "--event-name", "Decrypt", "--principal", denied["arn"], "--key", arn
    )
    assert [e["errorCode"] for e in events] == ["AccessDeniedException"]


def test_audit_trail_shows_the_sdk_calls_with_their_context(
    sdk: EncryptionSDKClient, session: Any, server: Any, key: dict[str, Any]
) -> None:
    provider = strict(session, key["Arn"])
    message, header = sdk.encrypt(
        source=b"audited", key_provider=provider, encryption_context=CONTEXT
    )
    sdk.decrypt(source=message, key_provider=provider)
    _, events = audit_events(server, "--key", key["Arn"])
    assert [e["eventName"] for e in events] == ["CreateKey", "GenerateDataKey", "Decrypt"]
    public_key = header.encryption_context[PUBLIC_KEY]
    for event in events[1:]:
        assert event["requestParameters"]["encryptionContext"] == {
            **CONTEXT,
            PUBLIC_KEY: public_key,
        }
        assert USER_AGENT_SUFFIX in event["userAgent"]
        assert "errorCode" not in event


# -- the keyring API (aws-cryptographic-material-providers, pure Python) -------------------


@pytest.fixture(scope="module")
def keyrings() -> AwsCryptographicMaterialProviders:
    return AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())


def kms_keyring(keyrings: AwsCryptographicMaterialProviders, arn: str, client: Any) -> Any:
    return keyrings.create_aws_kms_keyring(
        input=CreateAwsKmsKeyringInput(kms_key_id=arn, kms_client=client)
    )


def test_kms_keyring_round_trip(
    sdk: EncryptionSDKClient,
    keyrings: AwsCryptographicMaterialProviders,
    kms: Any,
    key: dict[str, Any],
) -> None:
    keyring = kms_keyring(keyrings, key["Arn"], kms)
    message, _ = sdk.encrypt(source=b"keyring", keyring=keyring, encryption_context=CONTEXT)
    plaintext, header = sdk.decrypt(source=message, keyring=keyring, encryption_context=CONTEXT)
    assert plaintext == b"keyring"
    assert header.encryption_context.items() >= CONTEXT.items()


def test_kms_keyring_surfaces_access_denied(
    sdk: EncryptionSDKClient,
    keyrings: AwsCryptographicMaterialProviders,
    kms: Any,
    no_decrypt: dict[str, Any],
    key: dict[str, Any],
) -> None:
    message, _ = sdk.encrypt(source=b"keyring", keyring=kms_keyring(keyrings, key["Arn"], kms))
    denied = kms_keyring(keyrings, key["Arn"], no_decrypt["client"])
    with pytest.raises(AWSEncryptionSDKClientError) as info:
        sdk.decrypt(source=message, keyring=denied)
    # The keyring collects the error of each KMS call it made: here the one Decrypt.
    (collected,) = info.value.args
    (kms_error,) = collected.list
    assert "(AccessDeniedException) when calling the Decrypt operation" in kms_error.message
