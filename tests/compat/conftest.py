"""Fixtures of the compat tests on top of tests/conftest.py's real server."""

from __future__ import annotations

from typing import Any

import pytest

from ._support import (
    ALL_KMS,
    OTHER_REGION,
    KeyMaker,
    key_forms,
    make_client,
    new_principal,
    unique_alias,
)


@pytest.fixture(scope="session")
def raw_kms(server: Any) -> Any:
    """An admin client that does not validate parameters itself."""
    return make_client(
        server.endpoint, server.access_key_id, server.secret_access_key, validate=False
    )


@pytest.fixture(scope="session")
def eu_kms(server: Any) -> Any:
    """An admin client signing for eu-west-1."""
    return make_client(
        server.endpoint, server.access_key_id, server.secret_access_key, OTHER_REGION
    )


@pytest.fixture
def aliased_key(kms: Any, key: dict[str, Any]) -> dict[str, Any]:
    """A fresh key with one alias: {"meta": KeyMetadata, "alias": name, "forms": {...}}."""
    name = unique_alias("k")
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    return {"meta": key, "alias": name, "forms": key_forms(key, name)}


@pytest.fixture(scope="session")
def other_account(server: Any) -> dict[str, Any]:
    """A user in a second account (444455556666) whose identity policy allows kms:* on
    every resource, and a client signing as it."""
    account = "444455556666"
    server.admin("create-account", account)
    return new_principal(server, "bob", account=account, policy=ALL_KMS)


@pytest.fixture(scope="session")
def key_of(kms: Any) -> KeyMaker:
    """``key_of(spec, usage)``: KeyMetadata of a shared key, made once per backend; a test
    that changes a key makes its own instead."""
    return KeyMaker(kms)
