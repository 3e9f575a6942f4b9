"""SoftHSM2 under the data directory: one command to try an HSM-backed server on one machine.

SoftHSM2 (Debian package ``softhsm2``) is a PKCS#11 module whose tokens are files. Its
tokens for this server live under ``DATA_DIR/softhsm/tokens`` with its own
``DATA_DIR/softhsm/softhsm2.conf``, which the module reads from the ``SOFTHSM2_CONF``
environment variable when a process first loads it: ``use_data_dir`` sets it before that.
One process loads one SoftHSM2 configuration, so every SoftHSM2 token a server uses (its
root key's, its custom key stores') lives in that one directory.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from strongroom.keystores.pkcs11_token import _MODULES, TokenError, init_token

MODULE_PATHS = (
    Path("/usr/lib/softhsm/libsofthsm2.so"),
    Path("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
    Path("/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"),
    Path("/usr/local/lib/softhsm/libsofthsm2.so"),
)
CONF_ENV = "SOFTHSM2_CONF"


def module_path() -> Path:
    """The installed SoftHSM2 module; TokenError saying how to install it when there is none."""
    for path in MODULE_PATHS:
        if path.is_file():
            return path
    raise TokenError(
        "SoftHSM2 is not installed (no libsofthsm2.so in "
        + ", ".join(str(p.parent) for p in MODULE_PATHS)
        + "): apt-get install softhsm2"
    )


def softhsm_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "softhsm"


def use_data_dir(data_dir: Path) -> Path:
    """Make (mode 0700) and select the SoftHSM2 configuration under ``data_dir`` for this
    process; returns the module path. TokenError when the module was already loaded with
    another configuration."""
    module = module_path()
    base = softhsm_dir(data_dir)
    tokens = base / "tokens"
    tokens.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(base, 0o700)
    conf = base / "softhsm2.conf"
    text = (
        "# Written by strongroom: SoftHSM2 tokens of this data directory.\n"
        f"directories.tokendir = {tokens}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n"
    )
    if not conf.exists() or conf.read_text() != text:
        conf.write_text(text)
        os.chmod(conf, 0o600)
    current = os.environ.get(CONF_ENV)
    if current != str(conf):
        if module in _MODULES:
            raise TokenError(
                f"SoftHSM2 is already loaded in this process with {CONF_ENV}={current}; "
                f"it cannot also use {conf}"
            )
        os.environ[CONF_ENV] = str(conf)
    return module


def new_pin() -> str:
    """A random PIN (32 characters, 190 bits)."""
    return secrets.token_urlsafe(24)


def create_token(data_dir: Path, label: str, pin: str) -> Path:
    """A new token labelled ``label`` under ``data_dir``'s SoftHSM2 with user PIN ``pin``
    (its security officer PIN is random and thrown away: nothing here needs it). Returns the
    module path."""
    module = use_data_dir(data_dir)
    init_token(module, label, new_pin(), pin)
    return module
