"""The AWS shared config file beside ``credentials``: profile ``strongroom`` with the region
and this server's endpoint, so AWS clients need nothing but three environment variables.

botocore reads ``endpoint_url`` from a profile of the shared config file (the AWS SDKs and
Tools Reference Guide, "Service-specific endpoints"); ``strongroom env`` prints the
variables, with AWS_ENDPOINT_URL_KMS too for clients that read only that.

Over https with a certificate clients do not trust already (the ``--dev`` one), the profile
names the CA bundle too (``ca_bundle``, which botocore and the AWS CLI read from a profile),
and ``strongroom env`` exports it as AWS_CA_BUNDLE, and as NODE_EXTRA_CA_CERTS for the AWS
SDK for JavaScript v3, which reads neither."""

from __future__ import annotations

import configparser
import os
from pathlib import Path

PROFILE = "strongroom"
DEFAULT_REGION = "us-east-1"
_SECTION = f"profile {PROFILE}"  # a config file names profiles so (a credentials file does not)
_ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def credentials_profile(
    name: str, access_key_id: str, secret_access_key: str, session_token: str | None = None
) -> str:
    """Profile ``name`` as a shared credentials file holds it (a ``[NAME]`` section, no
    ``profile`` prefix), ending in a newline."""
    text = (
        f"[{name}]\naws_access_key_id = {access_key_id}\n"
        f"aws_secret_access_key = {secret_access_key}\n"
    )
    if session_token is not None:
        text += f"aws_session_token = {session_token}\n"
    return text


def endpoint_url(host: str, port: int, scheme: str = "http") -> str:
    """The URL a client on this machine reaches the server at (a wildcard address as the
    loopback address)."""
    host = _ANY_ADDRESS.get(host, host)
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def write_config(
    path: Path, endpoint: str, region: str = DEFAULT_REGION, ca_bundle: Path | None = None
) -> bool:
    """Write the config file (mode 0600) unless it exists; in one that exists, bring the
    profile's ``endpoint_url`` and ``ca_bundle`` up to date (a start on another port, with
    or without TLS) and keep the rest. True when the file was made."""
    config = configparser.ConfigParser(interpolation=None)
    made = not path.exists()
    bundle = None if ca_bundle is None else str(ca_bundle.resolve())
    if not made:
        config.read(path, encoding="utf-8")
        if (
            config.get(_SECTION, "endpoint_url", fallback=None) == endpoint
            and config.get(_SECTION, "ca_bundle", fallback=None) == bundle
        ):
            return False
    if not config.has_section(_SECTION):
        config.add_section(_SECTION)
    config.set(_SECTION, "region", config.get(_SECTION, "region", fallback=region))
    config.set(_SECTION, "endpoint_url", endpoint)
    if bundle is None:
        config.remove_option(_SECTION, "ca_bundle")
    else:
        config.set(_SECTION, "ca_bundle", bundle)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        config.write(f)
    return made


def read_endpoint(path: Path) -> str | None:
    """The profile's ``endpoint_url`` in the config file at ``path``; None when there is none."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(path, encoding="utf-8")
    return config.get(_SECTION, "endpoint_url", fallback=None)


def read_ca_bundle(path: Path) -> str | None:
    """The profile's ``ca_bundle`` in the config file at ``path``; None when there is none."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(path, encoding="utf-8")
    return config.get(_SECTION, "ca_bundle", fallback=None)


def env_lines(
    config_path: Path, credentials_path: Path, endpoint: str, ca_bundle: str | None = None
) -> list[str]:
    """The ``export`` lines that point AWS clients at the server, for a POSIX shell."""
    values = {
        "AWS_CONFIG_FILE": str(config_path.resolve()),
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials_path.resolve()),
        "AWS_PROFILE": PROFILE,
        "AWS_ENDPOINT_URL_KMS": endpoint,
    }
    if ca_bundle is not None:
        values["AWS_CA_BUNDLE"] = ca_bundle
        values["NODE_EXTRA_CA_CERTS"] = ca_bundle
    import shlex  # only ``strongroom env`` quotes: not imported by a server's start

    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
