"""HTTPS (``serve --tls``, ``--tls-cert``/``--tls-key``): boto3, the AWS CLI and the AWS SDK
for JavaScript reach a dedicated server over https when told to trust its CA bundle, and
fail with a certificate error when not; the start refuses certificate files it cannot
serve in one line, before writing anything."""

from __future__ import annotations

import base64
import configparser
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import REGION, Server, free_port, run_strongroom, started_server, stop_server

pytestmark = pytest.mark.compat

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
NODE = shutil.which("node")
AWS = shutil.which("aws") or "aws"
CERTIFICATE_ERROR = ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed")


def start_tls_server(data_dir: Path, *extra: str, ca: Path | None = None) -> Server:
    """``strongroom serve`` over https with ``extra`` options, once /health answers over
    https trusting ``ca`` (default: the generated DATA_DIR/tls/ca.pem)."""
    port = free_port()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"{data_dir.name}-server.log"
    cmd = [sys.executable, "-m", "strongroom.cli.main", "serve", "--port", str(port)]
    cmd += ["--data-dir", str(data_dir), *extra]
    process = subprocess.Popen(cmd, stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
    endpoint = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()}")
        bundle = ca or data_dir / "tls" / "ca.pem"
        try:
            context = ssl.create_default_context(cafile=str(bundle))
            with urllib.request.urlopen(endpoint + "/health", timeout=1, context=context) as r:
                if r.status == 200:
                    break
        except (OSError, ssl.SSLError):
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(
                    f"server did not become healthy: {log_path.read_text()}"
                ) from None
            time.sleep(0.05)
    return started_server(endpoint, data_dir, None, process, log_path, extra)


@pytest.fixture(scope="module")
def dev_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A --dev server on the certificate it generated."""
    server = start_tls_server(tmp_path_factory.mktemp("tls") / "data", "--dev", "--tls")
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def own_cert(dev_tls: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that is not --dev, on certificate files the operator gives (copies of the
    dev server's, outside the data directory), with real SigV4 authentication."""
    files = tmp_path_factory.mktemp("certs")
    for name in ("ca.pem", "server.pem", "server.key"):
        shutil.copy(dev_tls.data_dir / "tls" / name, files / name)
    server = start_tls_server(
        tmp_path_factory.mktemp("own") / "data",
        "--tls-cert",
        str(files / "server.pem"),
        "--tls-key",
        str(files / "server.key"),
        "--tls-ca-bundle",
        str(files / "ca.pem"),
        ca=files / "ca.pem",
    )
    yield server
    stop_server(server)


def _ca(server: Server) -> Path:
    return server.data_dir / "tls" / "ca.pem"


def _kms(server: Server, verify: Any) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "kms",
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
        verify=verify,
        config=Config(retries={"max_attempts": 0}),
    )


def _only_aws(**env: str) -> dict[str, str]:
    """The environment without AWS_ variables (nor NODE_EXTRA_CA_CERTS) but ``env``."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and k not in ("NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE")
    }
    return {**base, "AWS_EC2_METADATA_DISABLED": "true", "AWS_MAX_ATTEMPTS": "1", **env}


def _cli(server: Server, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    creds = {
        "AWS_ACCESS_KEY_ID": server.access_key_id,
        "AWS_SECRET_ACCESS_KEY": server.secret_access_key,
        "AWS_DEFAULT_REGION": REGION,
    }
    return subprocess.run(
        [AWS, "kms", *args, "--endpoint-url", server.endpoint, "--output", "json"],
        capture_output=True,
        text=True,
        env=_only_aws(**creds, **env),
        timeout=120,
    )


# -- boto3 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["dev_tls", "own_cert"])
def test_boto3_encrypts_and_decrypts_over_https_with_the_ca_bundle(
    which: str, request: pytest.FixtureRequest
) -> None:
    server: Server = request.getfixturevalue(which)
    ca = _ca(server) if which == "dev_tls" else Path(server.extra_args[-1])
    kms = _kms(server, str(ca))
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"over tls")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"over tls"


def test_boto3_without_the_ca_bundle_fails_with_a_certificate_error(dev_tls: Server) -> None:
    from botocore.exceptions import SSLError

    with pytest.raises(SSLError) as failure:
        _kms(dev_tls, True).list_keys()
    assert any(text in str(failure.value) for text in CERTIFICATE_ERROR), failure.value


def test_plain_http_to_the_https_port_gets_no_reply(dev_tls: Server) -> None:
    plain = dev_tls.endpoint.replace("https://", "http://") + "/health"
    with pytest.raises(OSError):
        urllib.request.urlopen(plain, timeout=5)


# -- the AWS CLI ----------------------------------------------------------------------------


def test_aws_cli_over_https_with_ca_bundle_option_and_variable(dev_tls: Server) -> None:
    key = _kms(dev_tls, str(_ca(dev_tls))).create_key()["KeyMetadata"]["KeyId"]
    by_option = _cli(dev_tls, "describe-key", "--key-id", key, "--ca-bundle", str(_ca(dev_tls)))
    assert by_option.returncode == 0, by_option.stderr
    assert json.loads(by_option.stdout)["KeyMetadata"]["KeyId"] == key
    by_variable = _cli(dev_tls, "describe-key", "--key-id", key, AWS_CA_BUNDLE=str(_ca(dev_tls)))
    assert by_variable.returncode == 0, by_variable.stderr
    assert json.loads(by_variable.stdout)["KeyMetadata"]["KeyId"] == key


def test_aws_cli_without_the_ca_bundle_fails_with_a_certificate_error(dev_tls: Server) -> None:
    result = _cli(dev_tls, "list-keys")
    assert result.returncode != 0
    assert "SSL validation failed" in result.stderr, result.stderr
    assert any(text in result.stderr for text in CERTIFICATE_ERROR), result.stderr


def test_the_aws_config_file_names_https_and_the_ca_bundle(dev_tls: Server) -> None:
    config = configparser.ConfigParser()
    config.read(dev_tls.data_dir / "config")
    profile = config["profile strongroom"]
    assert profile["endpoint_url"] == dev_tls.endpoint
    assert profile["ca_bundle"] == str(_ca(dev_tls).resolve())


def test_strongroom_env_points_the_aws_cli_at_https_with_nothing_else(dev_tls: Server) -> None:
    key = _kms(dev_tls, str(_ca(dev_tls))).create_key()["KeyMetadata"]["KeyId"]
    strongroom = f"{sys.executable} -m strongroom.cli.main env --data-dir '{dev_tls.data_dir}'"
    script = f'set -e; eval "$({strongroom})"; aws kms describe-key --key-id {key}'
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=_only_aws(), timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["KeyMetadata"]["KeyId"] == key
    lines = run_strongroom(["env", "--data-dir", str(dev_tls.data_dir)]).stdout.splitlines()
    assert f"export AWS_CA_BUNDLE={_ca(dev_tls).resolve()}" in lines
    assert f"export NODE_EXTRA_CA_CERTS={_ca(dev_tls).resolve()}" in lines


# -- the AWS SDK for JavaScript -------------------------------------------------------------

needs_node = pytest.mark.skipif(
    NODE is None or not (NODE_DIR / "node_modules").is_dir(),
    reason="node and tests/node/node_modules (npm ci --prefix tests/node) are needed",
)


def _crypt(server: Server, **env: str) -> subprocess.CompletedProcess[str]:
    """The JS SDK's crypt scenario (tests/node/scenarios.mjs) against ``server``."""
    given = {
        "server": {
            "endpoint": server.endpoint,
            "region": REGION,
            "admin": {
                "accessKeyId": server.access_key_id,
                "secretAccessKey": server.secret_access_key,
            },
        }
    }
    assert NODE is not None
    return subprocess.run(
        [NODE, "scenarios.mjs", "crypt"],
        input=json.dumps(given),
        capture_output=True,
        text=True,
        cwd=NODE_DIR,
        env=_only_aws(AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED="true", **env),
        timeout=60,
    )


@needs_node
def test_js_sdk_over_https_with_node_extra_ca_certs(dev_tls: Server) -> None:
    done = _crypt(dev_tls, NODE_EXTRA_CA_CERTS=str(_ca(dev_tls)))
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["decrypted"]["plaintext"] == "attack at dawn ✓"
    assert base64.b64decode(seen["dataKey"]["back"]["$bytes"]) == base64.b64decode(
        seen["dataKey"]["plaintext"]["$bytes"]
    )


@needs_node
def test_js_sdk_without_the_ca_fails_with_a_certificate_error(dev_tls: Server) -> None:
    done = _crypt(dev_tls)
    assert done.returncode != 0
    assert "SELF_SIGNED_CERT_IN_CHAIN" in done.stderr or "self-signed" in done.stderr, done.stderr


# -- the generated certificate and several workers ------------------------------------------


def test_the_generated_certificate_is_ecdsa_p256_for_the_loopback_names(dev_tls: Server) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    tls = dev_tls.data_dir / "tls"
    cert = x509.load_pem_x509_certificate((tls / "server.pem").read_bytes())
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost"} <= set(san.get_values_for_type(x509.DNSName))
    assert {"127.0.0.1", "::1"} <= {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    assert (tls / "server.key").stat().st_mode & 0o777 == 0o600


def test_a_restart_keeps_the_generated_certificate(tmp_path: Path) -> None:
    server = start_tls_server(tmp_path / "data", "--dev", "--tls")
    ca = _ca(server).read_bytes()
    stop_server(server)
    again = start_tls_server(tmp_path / "data", "--dev", "--tls", "--workers", "2")
    try:
        assert _ca(again).read_bytes() == ca  # clients keep trusting the same CA
        assert _kms(again, str(_ca(again))).list_keys()["Keys"] == []
        assert "listening on https://" in again.log_path.read_text()
    finally:
        stop_server(again)


# -- refusals -------------------------------------------------------------------------------


def _refused(tmp_path: Path, *extra: str, expected: str) -> None:
    data = tmp_path / "never"
    result = run_strongroom(["serve", "--port", "0", "--data-dir", str(data), *extra], check=False)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("strongroom: ") and expected in line, result.stderr
    assert not data.exists()


@pytest.fixture(scope="module")
def two_certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from strongroom.server.tls import dev_certificate

    base = tmp_path_factory.mktemp("two")
    return dev_certificate(base / "a").cert, dev_certificate(base / "b").key


def test_a_key_that_is_not_the_certificates_is_refused(
    tmp_path: Path, two_certs: tuple[Path, Path]
) -> None:
    cert, other_key = two_certs
    _refused(
        tmp_path,
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(other_key),
        expected="the private key is not the certificate's",
    )


def test_an_unreadable_certificate_is_refused(tmp_path: Path, two_certs: tuple[Path, Path]) -> None:
    _, key = two_certs
    missing = tmp_path / "missing.pem"
    _refused(tmp_path, "--tls-cert", str(missing), "--tls-key", str(key), expected="cannot read it")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    _refused(tmp_path, "--tls-cert", str(garbage), "--tls-key", str(key), expected="PEM")


def test_a_certificate_without_its_key_is_refused(
    tmp_path: Path, two_certs: tuple[Path, Path]
) -> None:
    cert, _ = two_certs
    _refused(tmp_path, "--tls-cert", str(cert), expected="--tls-cert is given without --tls-key")


def test_tls_without_a_certificate_outside_dev_is_refused(tmp_path: Path) -> None:
    _refused(tmp_path, "--tls", expected="give --tls-cert FILE and --tls-key FILE")


def test_tls_settings_come_from_the_environment_too(
    tmp_path: Path, two_certs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, other_key = two_certs
    monkeypatch.setenv("STRONGROOM_TLS_CERT", str(cert))
    monkeypatch.setenv("STRONGROOM_TLS_KEY", str(other_key))
    _refused(tmp_path, expected="the private key is not the certificate's")


def test_tls_settings_come_from_the_toml_file_too(
    tmp_path: Path, two_certs: tuple[Path, Path]
) -> None:
    cert, other_key = two_certs
    config = tmp_path / "strongroom.toml"
    config.write_text(f'tls_cert = "{cert}"\ntls-key = "{other_key}"\n')
    _refused(tmp_path, "--config", str(config), expected="the private key is not the certificate's")
