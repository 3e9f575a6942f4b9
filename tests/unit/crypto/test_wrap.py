"""Known-answer tests of the at-rest wrap format and the AADs that bind wrapped values.

The vectors (``tests/vectors/wrap_v1.json``) were made once with the code of the time under
a fixed root key; every data directory holds values like them. A change to the layout in
``crypto/wrap.py``, to the material AAD or to the access-key secret AAD fails here instead
of leaving existing data directories unreadable.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto import wrap as wrap_module
from strongroom.crypto.asymmetric_keys import load_key_pair
from strongroom.crypto.wrap import WRAP_V1, material_aad, unwrap, wrap
from strongroom.domain.enums import KeySpec
from strongroom.domain.errors import KeyStoreError
from strongroom.domain.secrets import KeyBytes
from strongroom.keystores.filekey import FileRootKey
from strongroom.services.identities import secret_aad

pytestmark = pytest.mark.unit

DATA = json.loads((Path(__file__).parents[2] / "vectors" / "wrap_v1.json").read_text())
ROOT_KEY = bytes.fromhex(DATA["root_key"])
VECTORS: list[dict[str, Any]] = DATA["vectors"]
ids = [v["name"] for v in VECTORS]


def aad_of(v: dict[str, Any]) -> bytes:
    """The AAD the server builds for what the vector wraps."""
    if v["purpose"] == "material":
        return material_aad(v["key_arn"], v["version"])
    assert v["purpose"] == "access_key_secret"
    return secret_aad(v["access_key_id"])


@pytest.fixture
def root_key(tmp_path: Path) -> FileRootKey:
    """The vectors' root key, loaded as a data directory's root key file is."""
    path = tmp_path / "root.key"
    path.write_bytes(ROOT_KEY)
    path.chmod(0o600)
    return FileRootKey(path)


@pytest.mark.parametrize("v", VECTORS, ids=ids)
def test_the_aad_is_the_stored_one(v: dict[str, Any]) -> None:
    assert aad_of(v).hex() == v["aad"]


@pytest.mark.parametrize("v", VECTORS, ids=ids)
def test_a_stored_value_unwraps_to_its_plaintext(v: dict[str, Any], root_key: FileRootKey) -> None:
    assert root_key.unwrap(bytes.fromhex(v["wrapped"]), aad_of(v)) == bytes.fromhex(v["plaintext"])


@pytest.mark.parametrize("v", [v for v in VECTORS if "public_key" in v], ids=lambda v: v["name"])
def test_stored_key_pair_material_loads_as_its_key_pair(v: dict[str, Any]) -> None:
    pair = load_key_pair(KeySpec(v["key_spec"]), KeyBytes(bytes.fromhex(v["plaintext"])))
    assert pair.public_der.hex() == v["public_key"]


@pytest.mark.parametrize("v", VECTORS, ids=ids)
def test_the_layout_is_the_documented_one(v: dict[str, Any]) -> None:
    # version byte, 12-byte nonce, AES-256-GCM ciphertext as long as the secret, 16-byte tag;
    # read here without crypto/wrap.py, as the module docstring lays it out.
    wrapped, plaintext = bytes.fromhex(v["wrapped"]), bytes.fromhex(v["plaintext"])
    assert wrapped[0] == WRAP_V1 == 1
    assert wrapped[1:13].hex() == v["nonce"]
    assert len(wrapped) == 1 + 12 + len(plaintext) + 16
    aead = AESGCM(ROOT_KEY)
    assert aead.decrypt(wrapped[1:13], wrapped[13:], bytes.fromhex(v["aad"])) == plaintext


@pytest.mark.parametrize("v", VECTORS, ids=ids)
def test_wrapping_with_the_stored_nonce_gives_the_stored_bytes(
    v: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The nonce is drawn at random per wrap; pin it to the vector's to compare the bytes.
    nonce = bytes.fromhex(v["nonce"])
    monkeypatch.setattr(wrap_module, "os", SimpleNamespace(urandom=lambda n: nonce[:n]))
    wrapped = wrap(AESGCM(ROOT_KEY), bytes.fromhex(v["plaintext"]), aad_of(v))
    assert wrapped.hex() == v["wrapped"]


def test_material_wrapped_for_one_key_or_version_does_not_unwrap_for_another() -> None:
    first, second, replica = (v for v in VECTORS if v.get("key_spec") == "SYMMETRIC_DEFAULT")
    aead = AESGCM(ROOT_KEY)
    wrapped = bytes.fromhex(first["wrapped"])
    for other in (second, replica):
        with pytest.raises(KeyStoreError):
            unwrap(aead, wrapped, material_aad(other["key_arn"], other["version"]))


@pytest.mark.parametrize(
    "wrapped",
    [b"", b"\x01" + b"n" * 12 + b"t" * 15, b"\x02" + bytes.fromhex(VECTORS[0]["wrapped"])[1:]],
    ids=["empty", "shorter than a tag", "another version byte"],
)
def test_an_unknown_format_does_not_unwrap(wrapped: bytes) -> None:
    with pytest.raises(KeyStoreError, match="unknown format"):
        unwrap(AESGCM(ROOT_KEY), wrapped, b"")
