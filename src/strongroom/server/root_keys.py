"""Opening the configured root key: a file, a key in a PKCS#11 token, or a SoftHSM2 token
under the data directory (settings ``root_key`` and ``pkcs11_*``; README "Root key in an
HSM").

Every failure is a StartError that names what is wrong (the module, the token, the PIN's
source, the key) and never contains the PIN.
"""

from __future__ import annotations

import hmac
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from strongroom.crypto.wrap import key_id
from strongroom.domain.errors import KeyStoreError
from strongroom.keystores import softhsm
from strongroom.keystores.base import RootKey
from strongroom.keystores.filekey import FileRootKey
from strongroom.keystores.pkcs11_root import KeyNotFound, Pkcs11RootKey
from strongroom.keystores.pkcs11_token import (
    REINITIALIZE_SECONDS,
    PinIncorrect,
    Token,
    TokenError,
    TokenUnavailable,
)
from strongroom.keystores.ring import RootKeyRing
from strongroom.server.settings import Settings
from strongroom.server.startup import StartError
from strongroom.services.root_key import ACTIVE, NEXT, RETIRING, registry
from strongroom.storage.ports import RootKeyEntry, Store

log = logging.getLogger(__name__)

SOFTHSM_TOKEN_LABEL = "strongroom-root"
TOKEN_START_SECONDS = 1.5  # how long a start looks for a token it does not find (open_token)


@dataclass(frozen=True, slots=True)
class TokenConfig:
    """Where a token root key is, and where its PIN comes from (never the PIN)."""

    module: Path
    token_label: str
    key_label: str
    pin_env: str | None
    pin_file: Path | None

    def pin_source(self) -> str:
        if self.pin_env is not None:
            return f"environment variable {self.pin_env}"
        return f"PIN file {self.pin_file}"

    def read_pin(self) -> str:
        """The PIN; StartError when its source is missing or unsafe."""
        if self.pin_env is not None:
            pin = os.environ.get(self.pin_env)
            if not pin:
                raise StartError(
                    f"the PKCS#11 PIN's environment variable {self.pin_env} (setting "
                    "pkcs11_pin_env) is not set or empty: set it to the token's user PIN"
                )
            return pin
        assert self.pin_file is not None
        try:
            if self.pin_file.stat().st_mode & 0o077:
                raise StartError(
                    f"PIN file {self.pin_file} must not be readable by others (chmod 600)"
                )
            pin = self.pin_file.read_text().strip()
        except OSError as exc:
            raise StartError(
                f"cannot read the PKCS#11 PIN file {self.pin_file} (setting pkcs11_pin_file): "
                f"{exc.strerror}"
            ) from None
        if not pin:
            raise StartError(f"PIN file {self.pin_file} is empty")
        return pin


def token_config(settings: Settings) -> TokenConfig:
    """The token of ``root_key = "pkcs11"`` or ``"softhsm"``. For softhsm this selects the
    data directory's SoftHSM2 configuration for the process (writing it if need be)."""
    if settings.root_key == "softhsm":
        module = _softhsm_module(settings.data_dir)
        return TokenConfig(
            module,
            SOFTHSM_TOKEN_LABEL,
            settings.pkcs11_key_label,
            None,
            settings.softhsm_pin_path,
        )
    assert settings.pkcs11_module is not None and settings.pkcs11_token_label is not None
    return TokenConfig(
        settings.pkcs11_module,
        settings.pkcs11_token_label,
        settings.pkcs11_key_label,
        settings.pkcs11_pin_env,
        settings.pkcs11_pin_file,
    )


def open_token_key(config: TokenConfig, *, key_label: str | None = None) -> Pkcs11RootKey:
    """The root key of ``config`` (or the key labelled ``key_label`` in its token): StartError
    naming the module, the token, the PIN's source or the key when it cannot be used.
    KeyNotFound (a TokenError) when the token is there but has no such key."""
    token = open_token(config)
    label = key_label or config.key_label
    try:
        return Pkcs11RootKey(token, label)
    except KeyNotFound:
        raise
    except KeyStoreError as exc:
        raise StartError(f"root key {label!r}: {exc}") from None


def open_token(config: TokenConfig) -> Token:
    """A logged-in session on the token of ``config``; StartError naming what is wrong.

    A token not found is looked for again for up to ``TOKEN_START_SECONDS``: SoftHSM2
    rewrites a token's files at every login, and a process that lists the tokens meanwhile
    misses it (about 1 listing in 100 while another process logs in again and again), which
    two workers starting together did."""
    token = Token(config.module, config.token_label, config.read_pin())
    deadline = time.monotonic() + TOKEN_START_SECONDS
    try:
        while True:
            try:
                token.check()
                break
            except TokenUnavailable:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(REINITIALIZE_SECONDS)
    except PinIncorrect as exc:
        raise StartError(
            f"{exc} (from {config.pin_source()}): give the token's user PIN there"
        ) from None
    except TokenUnavailable as exc:
        raise StartError(
            f"{exc}: check setting pkcs11_token_label and that the token is present"
        ) from None
    except TokenError as exc:
        raise StartError(f"{exc}: check setting pkcs11_module") from None
    return token


def create_softhsm_root(settings: Settings) -> Pkcs11RootKey:
    """The first start of ``root_key = "softhsm"``: a SoftHSM2 token under
    DATA_DIR/softhsm with a random PIN in DATA_DIR/softhsm/root.pin (0600), and a root key
    generated in it. On failure DATA_DIR/softhsm is removed again."""
    base = softhsm.softhsm_dir(settings.data_dir)
    existed = base.exists()
    try:
        pin = softhsm.new_pin()
        _softhsm_module(settings.data_dir)
        fd = os.open(settings.softhsm_pin_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(pin + "\n")
            f.flush()
            os.fsync(f.fileno())
        softhsm.create_token(settings.data_dir, SOFTHSM_TOKEN_LABEL, pin)
        config = token_config(settings)
        return Pkcs11RootKey.generate(open_token(config), config.key_label)
    except BaseException:
        if not existed:
            shutil.rmtree(base, ignore_errors=True)
        raise


def _softhsm_module(data_dir: Path) -> Path:
    try:
        return softhsm.use_data_dir(data_dir)
    except TokenError as exc:
        raise StartError(f"root key softhsm: {exc}") from None


# -- the registry: opening its keys, following its changes ---------------------------------


def entry_for(key: RootKey, provider: str, config: TokenConfig | None, state: str) -> RootKeyEntry:
    """The registry entry of ``key`` (no PIN: each server reads its own)."""
    cv = key.check_value()
    return RootKeyEntry(
        key_id(cv).hex(),
        cv,
        provider,
        None if config is None else str(config.module),
        None if config is None else config.token_label,
        None if config is None else config.key_label,
        state,
    )


def entry_config(entry: RootKeyEntry, settings: Settings) -> TokenConfig:
    """Where the token key of ``entry`` is, with this server's PIN source: the data
    directory's PIN file for softhsm, the pkcs11_pin_* settings for pkcs11."""
    assert entry.token_label is not None and entry.key_label is not None
    if entry.provider == "softhsm":
        module = _softhsm_module(settings.data_dir)
        return TokenConfig(
            module, entry.token_label, entry.key_label, None, settings.softhsm_pin_path
        )
    if settings.pkcs11_pin_env is None and settings.pkcs11_pin_file is None:
        raise StartError(
            f"root key {entry.key_id} is key {entry.key_label!r} in PKCS#11 token "
            f"{entry.token_label!r} of {entry.module}, but this server has no PIN for it: "
            "set pkcs11_pin_env or pkcs11_pin_file (README 'Root key in an HSM')"
        )
    return TokenConfig(
        Path(entry.module or ""),
        entry.token_label,
        entry.key_label,
        settings.pkcs11_pin_env,
        settings.pkcs11_pin_file,
    )


def open_entry(entry: RootKeyEntry, settings: Settings) -> RootKey:
    """The root key of a registry entry; StartError naming what is wrong, including a key
    that is not the one registered (another check value)."""
    key: RootKey
    if entry.provider == "file":
        try:
            key = FileRootKey(settings.root_key_path)
        except KeyStoreError as exc:
            raise StartError(
                f"root key {entry.key_id} is the file root key: {exc}; restore it from its "
                "backup (a migration from it is under way)"
            ) from None
    else:
        config = entry_config(entry, settings)
        try:
            key = open_token_key(config)
        except KeyNotFound as exc:
            raise StartError(f"root key {entry.key_id}: {exc}") from None
    if not hmac.compare_digest(key.check_value(), entry.check_value):
        raise StartError(
            f"root key {entry.key_id} ({entry.provider}) is not the key configured here "
            f"(that is root key {key_id(key.check_value()).hex()})"
        )
    return key


def ring_from_registry(
    entries: list[RootKeyEntry], settings: Settings, opened: dict[str, RootKey] | None = None
) -> RootKeyRing:
    """The ring of the registry's live keys (next, active, retiring), opened with this
    server's PIN sources; ``opened`` keeps keys opened before (by id)."""
    opened = {} if opened is None else opened
    live = [e for e in entries if e.state in (NEXT, ACTIVE, RETIRING)]
    active = [e for e in live if e.state == ACTIVE]
    if len(active) != 1:
        raise StartError(f"the root key registry has {len(active)} active keys, not 1")
    keys: dict[str, RootKey] = {}
    for entry in live:
        if entry.key_id not in opened:
            opened[entry.key_id] = open_entry(entry, settings)
        keys[entry.key_id] = opened[entry.key_id]
    file_ids = [e.key_id for e in live if e.provider == "file"]
    others = [k for kid, k in keys.items() if kid != active[0].key_id]
    return RootKeyRing(
        keys[active[0].key_id], others, file_key=keys[file_ids[0]] if file_ids else None
    )


class RootKeyFollower:
    """Keeps a server's ring in step with the registry: ``refresh`` (a periodic job) opens
    the keys a migration or rotation registered and drops the retired ones. A key it
    cannot open is logged and tried again at the next refresh; the ring stays as it was."""

    def __init__(self, settings: Settings, store: Store, ring: RootKeyRing) -> None:
        self._settings = settings
        self._store = store
        self.ring = ring
        self._opened: dict[str, RootKey] = {
            key_id(k.check_value()).hex(): k for k in ring.members()
        }
        self._seen: tuple[tuple[str, str], ...] | None = None
        self._lock = threading.Lock()
        ring.on_miss = self.refresh

    def refresh(self) -> bool:
        """Read the registry; True when the ring changed. Called by the periodic job, and
        by the ring when a value names a key it does not have yet."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> bool:
        entries = registry(self._store)
        seen = tuple((e.key_id, e.state) for e in entries)
        if seen == self._seen or not entries:
            self._seen = seen
            return False
        try:
            ring = ring_from_registry(entries, self._settings, self._opened)
        except (StartError, KeyStoreError) as exc:
            log.error("cannot follow the root key registry: %s", exc)
            active = [e.key_id for e in entries if e.state == ACTIVE]
            if active and key_id(self.ring.active.check_value()).hex() != active[0]:
                self.ring.refuse_wraps(
                    f"root key {active[0]} is active but this server cannot open it: {exc}"
                )
            return False
        self.ring.replace(ring.active, ring.members()[1:], ring.file_key)
        self._seen = seen
        live = {key_id(k.check_value()).hex() for k in ring.members()}
        for kid in [kid for kid in self._opened if kid not in live]:
            del self._opened[kid]
        log.info("root keys now: %s", ", ".join(f"{e.key_id} {e.state}" for e in entries))
        return True
