"""The AWS Encryption SDK's KMS master keys, on this package's KMS clients: one key for
encryption (a key id, key ARN, alias name or alias ARN), and a provider that decrypts a
message's data key with the KMS key its ARN names, optionally only with given keys."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import attr
from aws_encryption_sdk.exceptions import InvalidKeyIdError
from aws_encryption_sdk.key_providers.base import MasterKeyProvider, MasterKeyProviderConfig
from aws_encryption_sdk.key_providers.kms import KMSMasterKey, KMSMasterKeyConfig

from strongroom.client.kms import KmsClients, region_of

# The provider id of the SDK's KMS master keys, written into each encrypted data key
# (AWS Encryption SDK message format, "Encrypted data keys": key provider ID "aws-kms").
PROVIDER_ID = "aws-kms"


def encryption_key(clients: KmsClients, key_id: str) -> KMSMasterKey:
    """The master key that makes each message's data key with GenerateDataKey under
    ``key_id``; the message records the key ARN KMS answers."""
    return KMSMasterKey(config=KMSMasterKeyConfig(key_id=key_id, client=clients.for_key(key_id)))


@attr.s(hash=True)
class _DecryptingConfig(MasterKeyProviderConfig):  # type: ignore[misc]
    clients: KmsClients = attr.ib(hash=False)
    allowed: frozenset[str] | None = attr.ib(hash=False)


class DecryptingKeys(MasterKeyProvider):  # type: ignore[misc]
    """Vends a master key for each encrypted data key of a message (its provider info is
    the KMS key ARN), with the KMS client of the ARN's Region, as the SDK's discovery
    provider does; when ``allowed`` is given, only for those key ARNs (the SDK's strict
    mode), so no other key is ever asked."""

    provider_id = PROVIDER_ID
    _config_class = _DecryptingConfig
    vend_masterkey_on_decrypt = True
    config: _DecryptingConfig

    def __init__(self, **_: Any) -> None:
        pass  # MasterKeyProvider.__new__ sets the config

    def _new_master_key(self, key_id: bytes | str) -> KMSMasterKey:
        arn = key_id.decode() if isinstance(key_id, bytes) else key_id
        allowed = self.config.allowed
        if allowed is not None and arn not in allowed:
            raise InvalidKeyIdError(f"key {arn} is not one this client may decrypt with")
        if region_of(arn) is None:
            raise InvalidKeyIdError(f"encrypted data key names no key ARN: {arn}")
        return KMSMasterKey(
            config=KMSMasterKeyConfig(key_id=key_id, client=self.config.clients.for_key(arn))
        )


def decrypting_keys(clients: KmsClients, allowed: Collection[str] | None) -> DecryptingKeys:
    """A :class:`DecryptingKeys` on ``clients`` (``allowed``: key ARNs, None for any)."""
    return DecryptingKeys(clients=clients, allowed=None if allowed is None else frozenset(allowed))
