"""Opening the configured root key: a file, a key in a PKCS#11 token, or a SoftHSM2 token
under the data directory (settings ``root_key`` and ``pkcs11_*``; README "Root key in an
HSM").

Every failure is a StartError that names what is wrong (the module, the token, the PIN's
source, the key) and never contains the PIN.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from strongroom.domain.errors import KeyStoreError
from strongroom.keystores import softhsm
from strongroom.keystores.pkcs11_root import KeyNotFound, Pkcs11RootKey
from strongroom.keystores.pkcs11_token import PinIncorrect, Token, TokenError, TokenUnavailable
from strongroom.server.settings import Settings
from strongroom.server.startup import StartError

SOFTHSM_TOKEN_LABEL = "strongroom-root"


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
    """A logged-in session on the token of ``config``; StartError naming what is wrong."""
    token = Token(config.module, config.token_label, config.read_pin())
    try:
        token.check()
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
