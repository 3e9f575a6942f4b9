"""The one-command trial setup (``strongroom xks-proxy --dev``): everything under one data
directory D.

On first start: a SoftHSM2 token ``xks-proxy`` under D (its random user PIN in
``D/xks-proxy.pin``, mode 0600), the keys ``foo`` (ENCRYPT and DECRYPT), ``encrypt-only``,
``decrypt-only`` and ``impotent`` (neither) where absent, and two random credential sets (the
second shows rotation), written with the URI prefix and region to ``D/xks-proxy.json``,
mode 0600. Later starts reuse all of it; a list ``"disabled_keys"`` added to that file
disables those keys from the next start. Requests are logged to ``D/xks-proxy-requests.log``.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Any

from strongroom.keystores import softhsm
from strongroom.keystores.pkcs11_token import Token
from strongroom.xks_proxy.app import ProxyConfig, RequestLog
from strongroom.xks_proxy.auth import Authenticator, Credential
from strongroom.xks_proxy.keys import DECRYPT, ENCRYPT, TokenKeys

TOKEN_LABEL = "xks-proxy"
URI_PREFIX = "/strongroom"
REGION = "us-east-1"
DEV_KEYS: dict[str, list[str]] = {
    "foo": [ENCRYPT, DECRYPT],
    "encrypt-only": [ENCRYPT],
    "decrypt-only": [DECRYPT],
    "impotent": [],
}
CONFIG_NAME = "xks-proxy.json"
PIN_NAME = "xks-proxy.pin"
LOG_NAME = "xks-proxy-requests.log"


def new_credential() -> Credential:
    """A random credential: a 26-character access key id (base32) and a secret of 256
    random bits (Base64, as the spec recommends)."""
    access_key_id = base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=")
    return Credential(access_key_id, base64.b64encode(secrets.token_bytes(32)).decode())


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new file of mode 0600 (never readable by others, even briefly)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


def prepare(data_dir: Path) -> dict[str, Any]:
    """Create what is missing under ``data_dir`` and return the written configuration."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    pin_path = data_dir / PIN_NAME
    if pin_path.is_file():
        pin = pin_path.read_text().strip()
        softhsm.use_data_dir(data_dir)
    else:
        pin = softhsm.new_pin()
        softhsm.create_token(data_dir, TOKEN_LABEL, pin)
        _write_private(pin_path, pin + "\n")
    module = softhsm.module_path()
    keys = TokenKeys(Token(module, TOKEN_LABEL, pin))
    for key_id, usage in DEV_KEYS.items():
        keys.create(key_id, usage)
    keys.prepare_probe()
    config_path = data_dir / CONFIG_NAME
    if config_path.is_file():
        config: dict[str, Any] = json.loads(config_path.read_text())
        return config
    first, second = new_credential(), new_credential()
    config = {
        "uri_prefix": URI_PREFIX,
        "access_key_id": first.access_key_id,
        "secret_access_key": first.secret_access_key,
        "region": REGION,
        "keys": DEV_KEYS,
        "credentials": [
            {"access_key_id": c.access_key_id, "secret_access_key": c.secret_access_key}
            for c in (first, second)
        ],
        "token_label": TOKEN_LABEL,
        "request_log": str(data_dir / LOG_NAME),
    }
    _write_private(config_path, json.dumps(config, indent=2) + "\n")
    return config


def build(data_dir: Path, version: str = "unknown") -> ProxyConfig:
    """The app's configuration for ``data_dir`` (prepared first)."""
    config = prepare(data_dir)
    pin = (Path(data_dir) / PIN_NAME).read_text().strip()
    credentials = [
        Credential(c["access_key_id"], c["secret_access_key"])
        for c in config.get("credentials")
        or [
            {
                "access_key_id": config["access_key_id"],
                "secret_access_key": config["secret_access_key"],
            }
        ]
    ]
    token = Token(softhsm.module_path(), config.get("token_label", TOKEN_LABEL), pin)
    return ProxyConfig(
        prefixes={config["uri_prefix"]: Authenticator(config["region"], credentials)},
        keys=TokenKeys(token, disabled=frozenset(config.get("disabled_keys", []))),
        log=RequestLog.to_file(Path(data_dir) / LOG_NAME),
        version=version,
    )
