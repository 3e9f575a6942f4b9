"""Known-answer tests of the ciphertext blob and the encryption-context AAD."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto import blob as blob_module
from strongroom.crypto.blob import (
    FORMAT_TOKEN,
    FORMAT_V1,
    check_format,
    open_blob,
    parse_blob,
    seal,
)
from strongroom.crypto.context import encode_context
from strongroom.domain.errors import InvalidCiphertextException

pytestmark = pytest.mark.unit


def _opener(aead: AESGCM) -> blob_module.Open:
    """AES-GCM decryption as a key store runs it: a wrong tag is an opaque
    InvalidCiphertextException."""

    def decrypt(nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
        try:
            return aead.decrypt(nonce, sealed, aad)
        except InvalidTag:
            raise InvalidCiphertextException() from None

    return decrypt


VECTORS = json.loads((Path(__file__).parents[2] / "vectors" / "blob_v1.json").read_text())[
    "vectors"
]


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["key_id"][:8] + str(v["material_version"]))
def test_known_blob_decrypts_to_known_plaintext(v: dict[str, Any]) -> None:
    blob = parse_blob(bytes.fromhex(v["blob"]))
    assert (blob.account, blob.key_id, blob.material_version) == (
        v["account"],
        v["key_id"],
        v["material_version"],
    )
    aad = encode_context(v["context"])
    assert aad.hex() == v["context_aad"]
    assert open_blob(_opener(AESGCM(bytes.fromhex(v["key"]))), blob, aad) == bytes.fromhex(
        v["plaintext"]
    )


@pytest.mark.parametrize("v", VECTORS[:1])
def test_every_flipped_bit_is_invalid_ciphertext(v: dict[str, Any]) -> None:
    raw = bytes.fromhex(v["blob"])
    aead = AESGCM(bytes.fromhex(v["key"]))
    for i in range(len(raw) * 8):
        changed = bytearray(raw)
        changed[i // 8] ^= 1 << (i % 8)
        with pytest.raises(InvalidCiphertextException):
            open_blob(_opener(aead), parse_blob(bytes(changed)), encode_context(v["context"]))


def test_wrong_context_is_invalid_ciphertext() -> None:
    aead = AESGCM(AESGCM.generate_key(256))
    blob = seal(
        aead.encrypt,
        "111122223333",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        1,
        b"x",
        encode_context({"a": "1"}),
    )
    for context in ({}, {"a": "2"}, {"A": "1"}, {"a": "1", "b": "2"}):
        with pytest.raises(InvalidCiphertextException):
            open_blob(_opener(aead), parse_blob(blob), encode_context(context))


def test_context_encoding_is_unambiguous_and_order_free() -> None:
    assert encode_context({"ab": "c"}) != encode_context({"a": "bc"})
    assert encode_context({"a": "1", "b": "2"}) == encode_context({"b": "2", "a": "1"})
    assert encode_context(None) == encode_context({})


def test_two_encryptions_differ() -> None:
    aead = AESGCM(AESGCM.generate_key(256))
    args = (aead.encrypt, "111122223333", "1234abcd-12ab-34cd-56ef-1234567890ab", 1, b"same", b"")
    assert seal(*args) != seal(*args)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x01",
        b"\x00" + b"0" * 100,
        b"\x04" + b"0" * 100,
        b"\x01" + b"1" * 12 + b"\x00" + b"0" * 40,
    ],
)
def test_garbage_is_invalid_ciphertext(raw: bytes) -> None:
    with pytest.raises(InvalidCiphertextException):
        parse_blob(raw)


def test_token_blob_has_the_v1_layout_with_its_own_format_byte_in_the_aad() -> None:
    aead = AESGCM(AESGCM.generate_key(256))
    blob = seal(aead.encrypt, *_ARGS[:4], b"", FORMAT_TOKEN)
    parsed = parse_blob(blob)
    assert blob[0] == FORMAT_TOKEN and parsed.format == FORMAT_TOKEN
    assert open_blob(_opener(aead), parsed, b"") == b"p"
    check_format(parsed, FORMAT_TOKEN)
    with pytest.raises(InvalidCiphertextException):
        check_format(parsed, FORMAT_V1)
    # The format byte is authenticated: a token blob relabelled as a software blob (or the
    # reverse) does not open under the same key.
    relabelled = parse_blob(bytes((FORMAT_V1,)) + blob[1:])
    assert relabelled.format == FORMAT_V1
    with pytest.raises(InvalidCiphertextException):
        open_blob(_opener(aead), relabelled, b"")


# --- nonces ----------------------------------------------------------------------------

_ARGS = ("111122223333", "1234abcd-12ab-34cd-56ef-1234567890ab", 1, b"p", b"")


def _nonces(count: int) -> list[bytes]:
    aead = AESGCM(AESGCM.generate_key(256))
    return [parse_blob(seal(aead.encrypt, *_ARGS)).nonce for _ in range(count)]


def test_nonces_share_the_process_field_and_count_up_by_one() -> None:
    nonces = _nonces(1000)
    assert len(set(nonces)) == 1000
    assert {n[:4] for n in nonces} == {nonces[0][:4]}
    counters = [int.from_bytes(n[4:], "big") for n in nonces]
    assert all((b - a) % 2**64 == 1 for a, b in itertools.pairwise(counters))


def test_the_nonce_counter_wraps_within_its_eight_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blob_module, "_nonce_counter", itertools.count(2**64 - 1))
    first, second = _nonces(2)
    assert (first[4:], second[4:]) == (b"\xff" * 8, b"\x00" * 8)
    assert first[:4] == second[:4] == blob_module._nonce_field


def test_a_forked_child_draws_a_new_nonce_field_and_counter() -> None:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report the next nonce and leave at once
        try:
            os.write(write_end, blob_module._next_nonce())
        finally:
            os._exit(0)
    os.close(write_end)
    child = os.read(read_end, 64)
    os.close(read_end)
    os.waitpid(pid, 0)
    parent = blob_module._next_nonce()
    assert len(child) == 12
    # Equal fields would happen with probability 2^-32 (and equal counters 2^-64).
    assert child[:4] != parent[:4]
    assert abs(int.from_bytes(child[4:], "big") - int.from_bytes(parent[4:], "big")) > 1000
