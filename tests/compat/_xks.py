"""The bundled XKS proxy for the tests: ``strongroom xks-proxy --dev`` run for real on an
ephemeral port, its SoftHSM2 token under a data directory, and external key stores of a
Strongroom server connected to it."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import free_port

SRC = Path(__file__).resolve().parents[2] / "src"

_TOKEN_KEY = """
import sys
from pathlib import Path
from pkcs11 import Attribute
from strongroom.keystores import softhsm
from strongroom.keystores.pkcs11_token import Token
from strongroom.xks_proxy.dev import PIN_NAME, TOKEN_LABEL
from strongroom.xks_proxy.keys import TokenKeys
data, action, key_ids = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
softhsm.use_data_dir(data)
token = Token(softhsm.module_path(), TOKEN_LABEL, (data / PIN_NAME).read_text().strip())
for key_id in key_ids:
    if action == "create":
        TokenKeys(token).create(key_id, ["ENCRYPT", "DECRYPT"])
    else:
        token.run(lambda s: [o.destroy() for o in s.get_objects({Attribute.LABEL: key_id})])
"""


class Proxy:
    """A running ``strongroom xks-proxy --dev`` and its xks-proxy.json."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.config: dict[str, Any] = {}
        self.env = dict(os.environ, PYTHONPATH=str(SRC))
        self.env.pop("SOFTHSM2_CONF", None)

    def arguments(self) -> list[str]:
        """What ``strongroom xks-proxy`` is given besides its host and port."""
        return ["--dev", "--data-dir", str(self.data_dir)]

    def started_config(self) -> dict[str, Any]:
        """What the tests read of the proxy's configuration once it runs."""
        config: dict[str, Any] = json.loads((self.data_dir / "xks-proxy.json").read_text())
        return config

    def start(self) -> None:
        command = [sys.executable, "-m", "strongroom.cli.main", "xks-proxy", *self.arguments()]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(
            command, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StartFailed(self.process.stderr.read().decode())  # type: ignore[union-attr]
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("xks-proxy did not start")
        self.config = self.started_config()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self, **config_changes: Any) -> None:
        """Stop, change xks-proxy.json (``disabled_keys``, ``credentials``...), start again."""
        self.stop()
        if config_changes:
            path = self.data_dir / "xks-proxy.json"
            path.write_text(json.dumps({**json.loads(path.read_text()), **config_changes}))
        self.start()

    def token_keys(self, action: str, *key_ids: str) -> None:
        """Create (``"create"``, ENCRYPT and DECRYPT) or destroy (``"destroy"``) keys in the
        proxy's token, from a process of its own (the proxy should be stopped)."""
        subprocess.run(
            [sys.executable, "-c", _TOKEN_KEY, str(self.data_dir), action, *key_ids],
            env=self.env,
            check=True,
            capture_output=True,
        )

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def uri_path(self) -> str:
        return f"{self.config['uri_prefix']}/kms/xks/v1"

    def credential(self, which: int = 0) -> dict[str, str]:
        """A credential set as XksProxyAuthenticationCredential takes it."""
        found = self.config["credentials"][which]
        return {
            "AccessKeyId": found["access_key_id"],
            "RawSecretAccessKey": found["secret_access_key"],
        }

    def requests_logged(self) -> list[dict[str, Any]]:
        """The proxy's own request log, one JSON object a line."""
        log = Path(self.config["request_log"])
        return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]

    def url(self, path: str, prefix: str | None = None) -> str:
        prefix = self.config["uri_prefix"] if prefix is None else prefix
        return f"http://127.0.0.1:{self.port}{prefix}/kms/xks/v1/{path}"

    def call(
        self,
        path: str,
        body: dict[str, Any],
        *,
        access_key_id: str | None = None,
        secret: str | None = None,
        service: str = "kms-xks-proxy",
        region: str | None = None,
        prefix: str | None = None,
    ) -> requests.Response:
        request = AWSRequest(
            "POST",
            self.url(path, prefix),
            data=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
        )
        credentials = Credentials(
            access_key_id or self.config["access_key_id"],
            secret or self.config["secret_access_key"],
        )
        SigV4Auth(credentials, service, region or self.config["region"]).add_auth(request)
        prepared = request.prepare()
        return requests.post(
            prepared.url, data=prepared.body, headers=dict(prepared.headers), timeout=10
        )


def running_proxy(tmp_path_factory: Any, name: str) -> Iterator[Proxy]:
    """A module's dev proxy (for a module-scoped fixture: ``yield from``)."""
    running = Proxy(tmp_path_factory.mktemp(name) / "data")
    running.start()
    try:
        yield running
    finally:
        running.stop()


def create_external_store(kms: Any, proxy: Proxy, name: str, *, which: int = 0) -> str:
    """An external key store of ``kms``'s account on ``proxy`` (DISCONNECTED): its id."""
    reply = kms.create_custom_key_store(
        CustomKeyStoreName=name,
        CustomKeyStoreType="EXTERNAL_KEY_STORE",
        XksProxyUriEndpoint=proxy.endpoint,
        XksProxyUriPath=proxy.uri_path,
        XksProxyAuthenticationCredential=proxy.credential(which),
        XksProxyConnectivity="PUBLIC_ENDPOINT",
    )
    store_id: str = reply["CustomKeyStoreId"]
    return store_id


_SETUP = """
import sys
from pathlib import Path
from strongroom.keystores import softhsm
from strongroom.keystores.pkcs11_token import Token
from strongroom.xks_proxy.keys import TokenKeys
data, pin = Path(sys.argv[1]), sys.stdin.read().strip()
module = softhsm.create_token(data, "xks-toml", pin)
TokenKeys(Token(module, "xks-toml", pin)).create("unlisted", ["ENCRYPT", "DECRYPT"])
print(module)
"""

ALICE = ("ALICEACCESSKEYID0000001", base64.b64encode(b"a" * 32).decode())
ALICE_NEXT = ("ALICEACCESSKEYID0000002", base64.b64encode(b"b" * 32).decode())
BOB = ("BOBACCESSKEYID000000001", base64.b64encode(b"c" * 32).decode())


class FileProxy(Proxy):
    """``strongroom xks-proxy --config FILE`` on a SoftHSM2 token made for the test."""

    def __init__(self, tmp_path: Path, pin: str = "1234-pin-xks") -> None:
        super().__init__(tmp_path / "data")
        self.tmp_path = tmp_path
        env = dict(os.environ, PYTHONPATH=str(SRC))
        env.pop("SOFTHSM2_CONF", None)
        module = subprocess.run(
            [sys.executable, "-c", _SETUP, str(self.data_dir)],
            input="1234-pin-xks",
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        self.env = dict(
            env,
            SOFTHSM2_CONF=str(self.data_dir / "softhsm" / "softhsm2.conf"),
            XKS_TEST_PIN=pin,
            XKS_ALICE_NEXT=ALICE_NEXT[1],
        )
        (tmp_path / "bob.secret").write_text(BOB[1] + "\n")
        self.file = tmp_path / "xks.toml"
        self.file.write_text(
            f'''region = "eu-west-1"
request_log = "{tmp_path / "requests.log"}"

[token]
module = "{module}"
label = "xks-toml"
pin_env = "XKS_TEST_PIN"

[[uri_prefixes]]
prefix = "/alice"
[[uri_prefixes.credentials]]
access_key_id = "{ALICE[0]}"
secret_access_key = "{ALICE[1]}"
[[uri_prefixes.credentials]]
access_key_id = "{ALICE_NEXT[0]}"
secret_access_key_env = "XKS_ALICE_NEXT"

[[uri_prefixes]]
prefix = ""
[[uri_prefixes.credentials]]
access_key_id = "{BOB[0]}"
secret_access_key_file = "{tmp_path / "bob.secret"}"

[keys]
k1 = ["ENCRYPT", "DECRYPT"]
k2 = ["ENCRYPT"]
k3 = ["ENCRYPT", "DECRYPT"]

[options]
create_missing_keys = true
disabled_keys = ["k3"]
'''
        )

    def arguments(self) -> list[str]:
        return ["--config", str(self.file)]

    def started_config(self) -> dict[str, Any]:
        return {
            "uri_prefix": "/alice",
            "access_key_id": ALICE[0],
            "secret_access_key": ALICE[1],
            "region": "eu-west-1",
        }


class StartFailed(AssertionError):
    """The proxy process ended instead of listening (its stderr is the message)."""


def certificates(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all from that CA,
    as PEM files; plus a client certificate from another CA."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    def issue(
        subject: str, key: Any, issuer: str, issuer_key: Any, *, ca: bool, san: bool = False
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        return builder.sign(issuer_key, hashes.SHA256())

    files: dict[str, Path] = {}

    def write(label: str, cert: x509.Certificate, key: Any) -> None:
        files[label] = directory / f"{label}.pem"
        files[label].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files[label + "-key"] = directory / f"{label}.key"
        files[label + "-key"].write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    ca_key, other_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    write("ca", issue("test ca", ca_key, "test ca", ca_key, ca=True), ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    write(
        "server", issue("127.0.0.1", server_key, "test ca", ca_key, ca=False, san=True), server_key
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    write("client", issue("kms", client_key, "test ca", ca_key, ca=False), client_key)
    stranger_key = ec.generate_private_key(ec.SECP256R1())
    write(
        "stranger", issue("stranger", stranger_key, "other ca", other_key, ca=False), stranger_key
    )
    return files
