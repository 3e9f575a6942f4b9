"""keystores.cloudhsm on a real SoftHSM2 token, each scenario in its own process (SoftHSM2
reads its configuration once per process), and KeyStores' routing of keys to it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from strongroom.domain.enums import KeyManager, KeySpec, KeyState, KeyUsage, Origin
from strongroom.domain.models import Key
from strongroom.keystores.base import KeyStores

from ._softhsm import needs_softhsm, run_scenario

_PRELUDE = """
import logging
from datetime import UTC, datetime
from pathlib import Path
from pkcs11 import Attribute
from strongroom.crypto.blob import parse_blob, seal, open_blob, FORMAT_TOKEN
from strongroom.domain.enums import KeyManager, KeySpec, KeyState, KeyUsage, Origin
from strongroom.domain.errors import (
    InvalidCiphertextException, KMSInvalidStateException, UnsupportedOperationException)
from strongroom.domain.models import Key
from strongroom.domain.secrets import KeyBytes
from strongroom.keystores import softhsm
from strongroom.keystores.cloudhsm import CloudHsmKeyStore
from strongroom.keystores.pkcs11_token import Token
DATA = Path({data!r})
module = softhsm.create_token(DATA, "cks-token", "kmsuser-pin")

class Connections:
    def __init__(self):
        self.connected = True
        self.tokens = {{"cks-1": Token(module, "cks-token", "kmsuser-pin")}}
        self.lost_ids = []
    def token(self, store_id, key_arn):
        if not self.connected or store_id not in self.tokens:
            raise KMSInvalidStateException(f"{{key_arn}} is unavailable.")
        return self.tokens[store_id]
    def lost(self, store_id):
        self.lost_ids.append(store_id)

def key(n):
    arn = f"arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-00000000000{{n}}"
    return Key(arn=arn, account="111122223333",
        region="us-east-1", state=KeyState.ENABLED, description="",
        key_usage=KeyUsage.ENCRYPT_DECRYPT,
        key_spec=KeySpec.SYMMETRIC_DEFAULT, origin=Origin.AWS_CLOUDHSM,
        key_manager=KeyManager.CUSTOMER, multi_region=False, policy="{{}}",
        creation_date=datetime.now(UTC), current_version=1, custom_key_store_id="cks-1")

conns = Connections()
store = CloudHsmKeyStore(conns)
def objects(k):
    t = conns.tokens["cks-1"]
    return t.run(lambda s: list(s.get_objects({{Attribute.LABEL: k.arn}})))
def expect(error, fn, *args):
    try:
        fn(*args)
    except error as e:
        return str(e)
    raise AssertionError(f"no {{error.__name__}}")
"""


def _run(tmp_path: Path, body: str) -> str:
    return run_scenario(_PRELUDE, tmp_path, body)


@needs_softhsm
def test_material_is_made_in_the_token_and_gcm_runs_there(tmp_path: Path) -> None:
    out = _run(
        tmp_path,
        """
        k1, k2 = key(1), key(2)
        for k in (k1, k2):
            store.new_material(k)
        (obj,) = objects(k1)
        print("attrs", obj[Attribute.SENSITIVE], obj[Attribute.EXTRACTABLE],
              obj[Attribute.NEVER_EXTRACTABLE], obj[Attribute.LOCAL], obj[Attribute.VALUE_LEN])
        blob = seal(lambda n, p, a: store.encrypt(k1, 1, n, p, a), k1.account, k1.key_id, 1,
                    b"secret", b"ctx", FORMAT_TOKEN)
        print("open", open_blob(lambda n, s, a: store.decrypt(k1, 1, n, s, a),
                                parse_blob(blob), b"ctx"))
        parsed = parse_blob(blob)
        for what, args in (
            ("context", (k1, 1, parsed.nonce, parsed.sealed, parsed.header + b"other")),
            ("other key", (k2, 1, parsed.nonce, parsed.sealed, parsed.header + b"ctx")),
            ("version", (k1, 2, parsed.nonce, parsed.sealed, parsed.header + b"ctx")),
            ("flipped", (k1, 1, parsed.nonce, parsed.sealed[:-1] + bytes([parsed.sealed[-1] ^ 1]),
                         parsed.header + b"ctx")),
        ):
            expect(InvalidCiphertextException, store.decrypt, *args)
            print("refused", what)
        print("given", expect(UnsupportedOperationException, store.new_material, k1,
                              KeyBytes(b"x" * 32)))
        expect(UnsupportedOperationException, store.generate_mac, k1, 1, b"m", None)
        expect(UnsupportedOperationException, store.sign, k1, 1, b"m", None, None)
        print("available", store.available(k1), store.available(k1, probe=True))
        conns.connected = False
        print("unavailable", expect(KMSInvalidStateException, store.encrypt, k1, 1,
                                    b"\\0" * 12, b"x", b""), store.available(k1))
        conns.connected = True
        store.discard(k1)
        print("left", len(objects(k1)), len(objects(k2)))
        """,
    )
    assert "attrs True False True True 32" in out
    assert "open b'secret'" in out
    for what in ("context", "other key", "version", "flipped"):
        assert f"refused {what}" in out
    assert "cannot be imported" in out
    assert "available True True" in out
    assert "unavailable arn:aws:kms:us-east-1:111122223333:key/" in out
    assert "is unavailable. False" in out
    assert "left 0 1" in out


@needs_softhsm
def test_discard_of_an_unavailable_store_leaves_the_object_and_says_so(tmp_path: Path) -> None:
    out = _run(
        tmp_path,
        """
        import io
        stream = io.StringIO()
        logging.basicConfig(stream=stream, level=logging.WARNING)
        k = key(1)
        store.new_material(k)
        conns.connected = False
        store.discard(k)
        conns.connected = True
        print("left", len(objects(k)))
        print("log", stream.getvalue().strip())
        """,
    )
    assert "left 1" in out
    assert "delete the object labelled 'arn:aws:kms:us-east-1:111122223333:key/" in out


def _key(store_id: str | None) -> Key:
    arn = "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000001"
    return Key(
        arn=arn,
        account="111122223333",
        region="us-east-1",
        state=KeyState.ENABLED,
        description="",
        key_usage=KeyUsage.ENCRYPT_DECRYPT,
        key_spec=KeySpec.SYMMETRIC_DEFAULT,
        origin=Origin.AWS_CLOUDHSM if store_id else Origin.AWS_KMS,
        key_manager=KeyManager.CUSTOMER,
        multi_region=False,
        policy="{}",
        creation_date=datetime.now(UTC),
        current_version=1,
        custom_key_store_id=store_id,
    )


class _Store:
    def __init__(self, up: bool = True) -> None:
        self.up = up
        self.forgotten: list[str] = []

    def available(self, key: Key, *, probe: bool = False) -> bool:
        return self.up

    def forget(self, arn: str) -> None:
        self.forgotten.append(arn)

    def forget_all(self) -> None:
        self.forgotten.append("*")


def test_key_stores_route_by_origin() -> None:
    software, custom, external = _Store(), _Store(up=False), _Store()
    stores = KeyStores(software, custom, external)  # type: ignore[arg-type]
    in_cloudhsm = _key("cks-1234567890abcdef0")
    in_xks = in_cloudhsm.evolve(origin=Origin.EXTERNAL_KEY_STORE, xks_key_id="foo")
    assert stores.for_key(_key(None)) is software
    assert stores.for_key(_key(None).evolve(origin=Origin.EXTERNAL)) is software
    assert stores.for_key(in_cloudhsm) is custom
    assert stores.for_key(in_xks) is external
    assert stores.available(_key(None)) is True
    assert stores.available(in_cloudhsm) is False
    assert stores.available(in_xks) is True
    stores.forget("arn")
    assert software.forgotten == custom.forgotten == external.forgotten == ["arn"]


def test_without_a_custom_store_a_key_in_one_is_an_internal_error() -> None:
    from strongroom.domain.errors import KeyStoreError

    stores = KeyStores(_Store())  # type: ignore[arg-type]
    with pytest.raises(KeyStoreError):
        stores.for_key(_key("cks-1234567890abcdef0"))
    assert stores.available(_key("cks-1234567890abcdef0")) is False
