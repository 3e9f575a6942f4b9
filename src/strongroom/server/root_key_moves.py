"""Moving a database onto another root key while the servers keep serving: ``strongroom
admin root-key migrate`` (the file root key to a key in a token) and ``rotate`` (one token
key to a new one in the same token). README "Root key in an HSM".

Each move goes through the root key registry (``root_keys``), one step per state, so a
move stopped at any point is finished by running the command again:

1. the new key is made in the token and registered as ``next``: every server opens it
   (``RootKeyFollower``, every ``change_poll_seconds``) and can unwrap what it wraps;
2. after a grace period, one transaction makes it ``active`` and the old key
   ``retiring``, and records its check value as the database's root key: servers wrap
   under it from their next refresh on;
3. after another grace period, every wrapped row not under the new key is re-wrapped
   under it in batches, compare-and-set (``services/root_key.rewrap``), with progress;
4. the old key becomes ``retired`` (servers drop it); after another grace period a last
   pass takes anything a slow server still wrapped under it, and then it goes: the root
   key file is removed (migrate) or the key object is destroyed in the token (rotate).

A server that cannot open the active key (no PIN for its token, say) refuses every wrap
(``RootKeyRing.refuse_wraps``) rather than wrap under a key that is being retired.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from strongroom.domain.errors import KeyStoreError
from strongroom.keystores.base import RootKey
from strongroom.keystores.filekey import FileRootKey
from strongroom.keystores.pkcs11_root import KeyNotFound, Pkcs11RootKey
from strongroom.keystores.ring import RootKeyRing
from strongroom.server.root_keys import (
    create_softhsm_root,
    entry_config,
    entry_for,
    open_entry,
    open_token,
    open_token_key,
    token_config,
)
from strongroom.server.settings import Settings, check_root_key
from strongroom.server.startup import StartError
from strongroom.services.root_key import (
    ACTIVE,
    KIND_NAMES,
    NEXT,
    RETIRED,
    RETIRING,
    bind_root_key,
    registry,
    rewrap,
)
from strongroom.storage.ports import RootKeyEntry, Store, WrappedKind

Say = Callable[[str], None]


def migrate(
    settings: Settings, store: Store, to: str, say: Say, grace: float, batch: int = 100
) -> dict[str, Any]:
    """Move a database from the file root key onto a key in a token: ``to`` "softhsm" (a
    SoftHSM2 token under DATA_DIR) or "pkcs11" (the pkcs11_* settings name the token, its
    key label and the PIN source)."""
    target_settings = dataclasses.replace(settings, root_key=to)
    check_root_key(target_settings)
    entries = registry(store)
    file_entry = next((e for e in entries if e.provider == "file"), None)
    if file_entry is not None and file_entry.state == RETIRED:
        removed = _remove_root_key_file(settings, say)
        active = next(e for e in entries if e.state == ACTIVE)
        return _summary(active, 0, removed, "the database was migrated before")
    if file_entry is None and entries:
        raise StartError(
            "the database is not on the file root key (its root key is in a token): "
            "strongroom admin root-key rotate makes a new one"
        )
    try:
        file_key = FileRootKey(settings.root_key_path)
    except KeyStoreError as exc:
        raise StartError(f"{exc}: migrate moves the database off this file") from None
    if file_entry is None:
        recorded = bind_root_key(store, file_key, _now())
        if recorded is not None:
            raise StartError(
                f"the database is not wrapped under {settings.root_key_path}: run migrate "
                "in the data directory of a server of this database"
            )
        file_entry = entry_for(file_key, "file", None, ACTIVE)
        with store.transaction() as tx:
            tx.root_key.register(file_entry, _now())
    target_entry = next(
        (e for e in registry(store) if e.provider != "file" and e.state in (NEXT, ACTIVE)),
        None,
    )
    if target_entry is None:
        target_key = _new_target(target_settings)
        config = token_config(target_settings)
        target_entry = entry_for(target_key, to, config, NEXT)
        with store.transaction() as tx:
            tx.root_key.register(target_entry, _now())
        say(
            f"registered root key {target_entry.key_id} ({to}, token "
            f"{target_entry.token_label!r}, key {target_entry.key_label!r}); waiting "
            f"{grace:g}s for every server to open it"
        )
        time.sleep(grace)
    else:
        target_key = open_entry(target_entry, target_settings)
        say(f"resuming the migration to root key {target_entry.key_id}")
    count = _switch_and_rewrap(
        store, file_entry, target_entry, file_key, target_key, say, grace, batch
    )
    removed = _remove_root_key_file(settings, say)
    return _summary(target_entry, count, removed, "migrated")


def rotate(
    settings: Settings, store: Store, say: Say, grace: float, batch: int = 100
) -> dict[str, Any]:
    """Re-wrap the database under a new key generated in the token of its active key; the
    old key is destroyed in the token at the end."""
    entries = registry(store)
    active = next((e for e in entries if e.state == ACTIVE), None)
    if active is None or active.provider == "file":
        raise StartError(
            "the database's root key is the file root key: strongroom admin root-key migrate "
            "moves it onto a token first"
        )
    finished = _destroy_retired(entries, settings, say)
    pending = next((e for e in entries if e.state == NEXT), None)
    retiring = next((e for e in entries if e.state == RETIRING), None)
    if retiring is not None:  # stopped after the switch: re-wrap what is left
        old_entry, new_entry = retiring, active
        say(f"resuming the rotation to root key {new_entry.key_id}")
    elif pending is not None:  # stopped before the switch
        old_entry, new_entry = active, pending
        say(f"resuming the rotation to root key {new_entry.key_id}")
    elif finished:
        return _summary(active, 0, None, "the rotation before was finished")
    else:
        old_entry = active
        config = entry_config(active, settings)
        prefix = (active.key_label or "strongroom-root").rsplit("~", 1)[0][:22]
        label = f"{prefix}~{secrets.token_hex(4)}"
        new_key: RootKey = Pkcs11RootKey.generate(open_token(config), label)
        new_entry = entry_for(
            new_key, active.provider, dataclasses.replace(config, key_label=label), NEXT
        )
        with store.transaction() as tx:
            tx.root_key.register(new_entry, _now())
        say(
            f"registered root key {new_entry.key_id} (key {label!r} in token "
            f"{new_entry.token_label!r}); waiting {grace:g}s for every server to open it"
        )
        time.sleep(grace)
    old_key = open_entry(old_entry, settings)
    new_key = open_entry(new_entry, settings)
    count = _switch_and_rewrap(store, old_entry, new_entry, old_key, new_key, say, grace, batch)
    _destroy(old_entry, old_key, say)
    return _summary(new_entry, count, None, "rotated")


def _switch_and_rewrap(
    store: Store,
    old_entry: RootKeyEntry,
    new_entry: RootKeyEntry,
    old_key: RootKey,
    new_key: RootKey,
    say: Say,
    grace: float,
    batch: int,
) -> int:
    current = {e.key_id: e.state for e in registry(store)}
    if current.get(new_entry.key_id) == NEXT:
        with store.transaction() as tx:
            tx.root_key.set_state(new_entry.key_id, ACTIVE)
            tx.root_key.set_state(old_entry.key_id, RETIRING)
            tx.root_key.set_check_value(new_key.check_value(), _now())
        say(
            f"root key {new_entry.key_id} is active; waiting {grace:g}s for every server to "
            "wrap under it"
        )
        time.sleep(grace)
    file_key = old_key if old_entry.provider == "file" else None
    ring = RootKeyRing(new_key, [old_key], file_key=file_key)

    def progress(kind: WrappedKind, done: int, total: int) -> None:
        say(f"re-wrapped {done}/{total} {KIND_NAMES[kind]}")

    count = rewrap(store, ring, progress, batch=max(1, batch))
    with store.transaction() as tx:
        tx.root_key.set_state(old_entry.key_id, RETIRED)
    # A server that had not seen the switch may have wrapped under the old key until it
    # saw the key retired: give every server that long, and take what it wrote, before the
    # old key goes.
    time.sleep(grace)
    count += rewrap(store, ring, progress, batch=max(1, batch))
    say(f"every secret is wrapped under root key {new_entry.key_id}; {old_entry.key_id} retired")
    return count


def _new_target(settings: Settings) -> RootKey:
    """The target key of a migration, made if need be: a SoftHSM2 token under DATA_DIR
    and its key, or the key of the label in the configured PKCS#11 token (generated when
    the token has none: a migration stopped after making it finds it again)."""
    if settings.root_key == "softhsm" and not settings.softhsm_pin_path.exists():
        try:
            return create_softhsm_root(settings)
        except KeyStoreError as exc:
            raise StartError(f"cannot make the SoftHSM2 root key: {exc}") from None
    config = token_config(settings)
    try:
        return open_token_key(config)
    except KeyNotFound:
        return Pkcs11RootKey.generate(open_token(config), config.key_label)


def _destroy_retired(entries: list[RootKeyEntry], settings: Settings, say: Say) -> bool:
    """Destroy retired token keys still in their token (a rotation stopped before it
    destroyed the old key); True when there was one."""
    found = False
    for entry in entries:
        if entry.state != RETIRED or entry.provider == "file":
            continue
        try:
            key = open_token_key(entry_config(entry, settings))
        except KeyNotFound:
            continue
        _destroy(entry, key, say)
        found = True
    return found


def _destroy(entry: RootKeyEntry, key: RootKey, say: Say) -> None:
    if isinstance(key, Pkcs11RootKey):
        key.destroy()
        say(f"destroyed the old root key {entry.key_id} (key {entry.key_label!r}) in the token")


def _remove_root_key_file(settings: Settings, say: Say) -> str | None:
    path = settings.root_key_path
    if not path.exists():
        return None
    path.unlink()
    say(f"removed {path}: remove every copy of it (other nodes, backups) too")
    return str(path)


def _summary(entry: RootKeyEntry, count: int, removed: str | None, outcome: str) -> dict[str, Any]:
    result: dict[str, Any] = {
        "Outcome": outcome,
        "RootKeyId": entry.key_id,
        "Provider": entry.provider,
        "TokenLabel": entry.token_label,
        "KeyLabel": entry.key_label,
        "Rewrapped": count,
    }
    if removed:
        result["RemovedRootKeyFile"] = removed
    return result


def _now() -> datetime:
    return datetime.now(UTC)
