"""``/ready``'s check (``server.app._not_ready``) against a real database and root key."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from conftest import free_port
from strongroom.keystores.filekey import FileRootKey
from strongroom.server.app import _not_ready
from strongroom.storage.sql.store import SqlStore


def core_of(store: SqlStore, root_key: Any) -> Any:
    return SimpleNamespace(store=store, root_key=root_key)  # what _not_ready reads


def test_ready_when_the_database_and_root_key_answer(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'db'}")
    store.migrate()
    assert _not_ready(core_of(store, FileRootKey.create(tmp_path / "root.key"))) is None


def test_a_database_that_does_not_answer_is_named(tmp_path: Path) -> None:
    nowhere = SqlStore(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none")
    assert _not_ready(core_of(nowhere, FileRootKey.create(tmp_path / "root.key"))) == "database"


class _GoneToken:
    """A root key whose token stopped answering (what python-pkcs11 raises then)."""

    def wrap(self, secret: bytes, aad: bytes) -> bytes:
        raise OSError("the token is gone")

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        raise OSError("the token is gone")


def test_a_root_key_that_does_not_answer_is_named(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'db'}")
    store.migrate()
    assert _not_ready(core_of(store, _GoneToken())) == "root key"
