"""The proxy's TOML configuration (``strongroom xks-proxy --config FILE``).

Example::

    region = "us-east-1"                  # the SigV4 region KMS signs for
    request_log = "/var/log/strongroom-xks/requests.log"   # default: stderr

    [token]
    module = "/usr/lib/softhsm/libsofthsm2.so"
    label = "xks"
    pin_env = "XKS_TOKEN_PIN"             # or pin_file = "/etc/strongroom-xks/pin"

    [[uri_prefixes]]
    prefix = "/example/prefix"            # "" for none
    [[uri_prefixes.credentials]]          # at least one; two or more while rotating
    access_key_id = "BETWEEN2TENAND3TENCHARACTERS"
    secret_access_key_env = "XKS_SECRET_1"   # or secret_access_key_file, or secret_access_key

    [keys]                                # the only external keys served
    foo = ["ENCRYPT", "DECRYPT"]
    archive = ["DECRYPT"]

    [options]
    create_missing_keys = false           # generate listed keys absent from the token
    disabled_keys = ["archive"]           # keyStatus DISABLED: encrypt/decrypt refused

    [tls]                                 # optional: HTTPS, and with client_ca_file mTLS
    cert_file = "/etc/strongroom-xks/server.pem"
    key_file = "/etc/strongroom-xks/server.key"
    client_ca_file = "/etc/strongroom-xks/client-ca.pem"

A key's usage is its token object's CKA_ENCRYPT/CKA_DECRYPT; a listed key is served with
the token's usage, and ``[keys]`` limits which token objects are external keys at all. Every
error is a ValueError naming the field and the rule; no secret or PIN is ever in one.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strongroom.keystores.pkcs11_token import Token
from strongroom.xks_proxy.app import ProxyConfig, RequestLog
from strongroom.xks_proxy.auth import Authenticator, Credential
from strongroom.xks_proxy.keys import DECRYPT, ENCRYPT, TokenKeys
from strongroom.xks_proxy.requests import KEY_ID

ACCESS_KEY_ID = re.compile(r"[A-Za-z0-9/_-]{20,30}")
SECRET = re.compile(r"[A-Za-z0-9/+=]{43,64}")
PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)*")


@dataclass(frozen=True)
class TokenConfig:
    module: Path
    label: str
    pin: str

    def __repr__(self) -> str:  # never the PIN
        return f"TokenConfig(module={str(self.module)!r}, label={self.label!r})"


@dataclass(frozen=True)
class TlsConfig:
    """The server's certificate and key (PEM), and with ``client_ca`` mutual TLS: only
    clients with a certificate that CA issued may connect."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None


@dataclass(frozen=True)
class FileConfig:
    region: str
    token: TokenConfig
    prefixes: dict[str, list[Credential]]
    keys: dict[str, list[str]]
    create_missing_keys: bool
    request_log: Path | None
    tls: TlsConfig | None = None
    disabled_keys: tuple[str, ...] = ()


def _table(parent: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    value = parent.get(name)
    if not isinstance(value, dict):
        raise ValueError(f"{where}{name} must be a table")
    return value


def _str(table: dict[str, Any], name: str, where: str) -> str:
    value = table.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}{name} must be a non-empty string")
    return value


def _secret(table: dict[str, Any], stem: str, where: str) -> str:
    """A secret given directly, by environment variable (``<stem>_env``) or file
    (``<stem>_file``): exactly one of them."""
    given = [name for name in (stem, f"{stem}_env", f"{stem}_file") if name in table]
    if len(given) != 1:
        raise ValueError(f"{where}: give exactly one of {stem}, {stem}_env, {stem}_file")
    name = given[0]
    source = _str(table, name, where + ".")
    if name.endswith("_env"):
        value = os.environ.get(source)
        if not value:
            raise ValueError(f"{where}.{name}: environment variable {source} is not set")
        return value
    if name.endswith("_file"):
        try:
            return Path(source).read_text().strip()
        except OSError as e:
            raise ValueError(f"{where}.{name}: cannot read {source}: {e.strerror}") from None
    return source


def parse(data: dict[str, Any]) -> FileConfig:
    """The configuration in a parsed TOML document."""
    region = _str(data, "region", "")
    token = _table(data, "token", "")
    token_config = TokenConfig(
        Path(_str(token, "module", "token.")),
        _str(token, "label", "token."),
        _secret(token, "pin", "token"),
    )
    prefixes: dict[str, list[Credential]] = {}
    entries = data.get("uri_prefixes")
    if not isinstance(entries, list) or not entries:
        raise ValueError("uri_prefixes must be a non-empty array of tables")
    for i, entry in enumerate(entries):
        where = f"uri_prefixes[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be a table")
        prefix = entry.get("prefix", "")
        if not isinstance(prefix, str) or not PREFIX.fullmatch(prefix) or len(prefix) > 128:
            raise ValueError(
                f"{where}.prefix must be '' or /-separated segments, at most 128 chars"
            )
        if prefix in prefixes:
            raise ValueError(f"{where}.prefix {prefix!r} is given twice")
        credentials = entry.get("credentials")
        if not isinstance(credentials, list) or not credentials:
            raise ValueError(f"{where}.credentials must be a non-empty array of tables")
        found: list[Credential] = []
        for j, credential in enumerate(credentials):
            at = f"{where}.credentials[{j}]"
            if not isinstance(credential, dict):
                raise ValueError(f"{at} must be a table")
            access_key_id = _str(credential, "access_key_id", at + ".")
            if not ACCESS_KEY_ID.fullmatch(access_key_id):
                raise ValueError(f"{at}.access_key_id must be 20 to 30 of A-Z a-z 0-9 / - _")
            if any(c.access_key_id == access_key_id for c in found):
                raise ValueError(f"{at}.access_key_id {access_key_id!r} is given twice")
            secret = _secret(credential, "secret_access_key", at)
            if not SECRET.fullmatch(secret):
                raise ValueError(
                    f"{at}: the secret access key must be 43 to 64 of A-Z a-z 0-9 / + ="
                )
            found.append(Credential(access_key_id, secret))
        prefixes[prefix] = found
    keys: dict[str, list[str]] = {}
    for key_id, usage in _table(data, "keys", "").items():
        if not KEY_ID.fullmatch(key_id):
            raise ValueError(f"keys.{key_id}: a key id is 1 to 128 of A-Z a-z 0-9 . _ -")
        if not isinstance(usage, list) or not set(usage) <= {ENCRYPT, DECRYPT}:
            raise ValueError(f"keys.{key_id} must be an array of ENCRYPT and DECRYPT (or empty)")
        keys[key_id] = list(usage)
    options = data.get("options", {})
    if not isinstance(options, dict):
        raise ValueError("options must be a table")
    create = options.get("create_missing_keys", False)
    if not isinstance(create, bool):
        raise ValueError("options.create_missing_keys must be true or false")
    disabled = options.get("disabled_keys", [])
    if not isinstance(disabled, list) or not set(disabled) <= set(keys):
        raise ValueError("options.disabled_keys must be an array of key ids listed in [keys]")
    log = data.get("request_log")
    if log is not None and (not isinstance(log, str) or not log):
        raise ValueError("request_log must be a path")
    return FileConfig(
        region,
        token_config,
        prefixes,
        keys,
        create,
        Path(log) if log else None,
        _tls(data),
        tuple(disabled),
    )


def _tls(data: dict[str, Any]) -> TlsConfig | None:
    if "tls" not in data:
        return None
    tls = _table(data, "tls", "")
    files = {}
    for name in ("cert_file", "key_file", "client_ca_file"):
        if name == "client_ca_file" and name not in tls:
            continue
        path = Path(_str(tls, name, "tls."))
        if not path.is_file():
            raise ValueError(f"tls.{name}: {path} does not exist")
        files[name] = path
    return TlsConfig(files["cert_file"], files["key_file"], files.get("client_ca_file"))


def load(path: Path) -> FileConfig:
    """Read and check the TOML file at ``path``."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path} is not valid TOML: {e}") from None
    return parse(data)


def build(config: FileConfig, version: str = "unknown") -> ProxyConfig:
    """The app's configuration: the token opened now (a wrong module, label or PIN fails the
    start), listed keys created when asked, the request log opened."""
    import sys

    token = Token(config.token.module, config.token.label, config.token.pin)
    token.check()
    keys = TokenKeys(token, frozenset(config.keys), frozenset(config.disabled_keys))
    keys.prepare_probe()
    if config.create_missing_keys:
        for key_id, usage in config.keys.items():
            keys.create(key_id, usage)
    log = RequestLog.to_file(config.request_log) if config.request_log else RequestLog(sys.stderr)
    return ProxyConfig(
        prefixes={
            prefix: Authenticator(config.region, credentials)
            for prefix, credentials in config.prefixes.items()
        },
        keys=keys,
        log=log,
        version=version,
    )
