"""The proxy's token side: a key's usage attributes are read again at most every
USAGE_SECONDS, and whenever the token gives a new key object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pkcs11 import Attribute

from strongroom.xks_proxy import keys as keys_module
from strongroom.xks_proxy.errors import InvalidKeyUsageException
from strongroom.xks_proxy.keys import TokenKeys


class _Key:
    def __init__(self, encrypt: bool, decrypt: bool) -> None:
        self.attributes = {Attribute.ENCRYPT: encrypt, Attribute.DECRYPT: decrypt}
        self.reads = 0

    def __getitem__(self, attribute: Attribute) -> bool:
        self.reads += 1
        return self.attributes[attribute]


class _Token:
    """Stands in for pkcs11_token.Token: one cached object per label, as find_key keeps."""

    label = "fake"

    def __init__(self, key: _Key) -> None:
        self.key = key

    def run(self, fn: Callable[[Any], Any]) -> Any:
        return fn(None)

    def find_key(self, session: Any, label: str, key_type: Any = None) -> _Key:
        return self.key


def test_usage_is_read_once_then_again_after_usage_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [100.0]
    monkeypatch.setattr(keys_module.time, "monotonic", lambda: clock[0])
    key = _Key(encrypt=True, decrypt=True)
    keys = TokenKeys(_Token(key))  # type: ignore[arg-type]
    assert keys.usage("foo") == ["ENCRYPT", "DECRYPT"]
    assert keys.usage("foo") == ["ENCRYPT", "DECRYPT"]
    assert key.reads == 2
    key.attributes[Attribute.ENCRYPT] = False  # changed in the token by someone else
    clock[0] += keys_module.USAGE_SECONDS
    assert keys.usage("foo") == ["DECRYPT"]
    assert key.reads == 4


def test_a_new_key_object_is_read_anew() -> None:
    token = _Token(_Key(encrypt=True, decrypt=False))
    keys = TokenKeys(token)  # type: ignore[arg-type]
    assert keys.usage("foo") == ["ENCRYPT"]
    token.key = _Key(encrypt=False, decrypt=False)  # the token's objects were looked up again
    with pytest.raises(InvalidKeyUsageException, match="cannot encrypt"):
        keys.encrypt("foo", b"x", b"")
