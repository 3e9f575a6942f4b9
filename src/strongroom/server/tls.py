"""HTTPS for the KMS endpoint: the operator's certificate and key, checked before the
start writes anything, or in ``--dev`` a certificate generated in the data directory.

The generated files live in ``DATA_DIR/tls``::

    ca.pem      a CA certificate made for this data directory (ECDSA P-256, 10 years);
                clients trust it: AWS_CA_BUNDLE, ``aws --ca-bundle``, ``verify=`` in boto3,
                NODE_EXTRA_CA_CERTS for the JavaScript SDK
    server.pem  the server's certificate (ECDSA P-256, one year), issued by that CA for
                localhost, 127.0.0.1, ::1 and the --host address; then the CA certificate
    server.key  its private key (PKCS#8 PEM, mode 0600)

A CA and a leaf rather than one self-signed leaf: TLS clients (OpenSSL's strict mode in
Python 3.13, Node.js) refuse a leaf certificate used as its own trust anchor in some
configurations, while a CA certificate (basicConstraints CA:TRUE, keyCertSign) is accepted
everywhere. The CA's private key is never written: nobody can issue another certificate
under it, and a new pair is generated when the server certificate is missing, expires
within a day, or does not name the --host address.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from strongroom.server.settings import Settings
from strongroom.server.startup import StartError

if TYPE_CHECKING:
    from cryptography import x509

# cryptography's X.509 is imported by the functions that make or read a certificate: a
# start without --tls does without it (~0.03 s CPU of the supervisor's start).

CA_FILE = "ca.pem"
CERT_FILE = "server.pem"
KEY_FILE = "server.key"
_CA_DAYS = 3650
_CERT_DAYS = 365
_RENEW_BEFORE = datetime.timedelta(days=1)
_ANY_ADDRESS = frozenset({"0.0.0.0", "::", ""})
_LOOPBACK_NAMES = ("localhost",)
_LOOPBACK_ADDRESSES = ("127.0.0.1", "::1")


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """What uvicorn serves (certificate chain and key) and what clients trust
    (``ca_bundle``: None when the operator's certificate is trusted the system's way)."""

    cert: Path
    key: Path
    ca_bundle: Path | None


def tls_dir(data_dir: Path) -> Path:
    return data_dir / "tls"


def wanted(settings: Settings) -> bool:
    """Whether the endpoint serves https: a certificate is given or ``tls`` is on."""
    return settings.tls or settings.tls_cert is not None


def check(settings: Settings) -> None:
    """StartError (one line) unless the TLS settings can be served: both of the certificate
    and the key or neither; readable PEM files; the key unencrypted and the certificate's;
    without them, ``tls`` only in ``--dev`` (which generates a certificate). Writes nothing."""
    if (settings.tls_cert is None) != (settings.tls_key is None):
        given, missing = (
            ("--tls-cert", "--tls-key") if settings.tls_key is None else ("--tls-key", "--tls-cert")
        )
        raise StartError(
            f"{given} is given without {missing}: give both the certificate (PEM) and its "
            "private key (PEM)"
        )
    if settings.tls_cert is None or settings.tls_key is None:
        if settings.tls and not settings.dev:
            raise StartError(
                "--tls needs a certificate: give --tls-cert FILE and --tls-key FILE (a "
                "certificate is generated only with --dev)"
            )
        return
    load(settings.tls_cert, settings.tls_key)


def load(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context with ``cert`` (PEM, the chain) and ``key``; StartError naming the
    file and the reason when either cannot be read or they do not match."""
    for option, path in (("--tls-cert", cert), ("--tls-key", key)):
        try:
            path.read_bytes()
        except OSError as exc:
            raise StartError(
                f"{option} {path}: cannot read it: {exc.strerror or exc}; check the path and "
                "that this user may read it"
            ) from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key, password=_no_password)
    except _Encrypted:
        raise StartError(
            f"--tls-key {key}: the private key is encrypted; give it unencrypted (mode 0600)"
        ) from None
    except ssl.SSLError as exc:
        raise StartError(f"--tls-cert {cert} / --tls-key {key}: {_reason(exc)}") from None
    return context


class _Encrypted(Exception):
    pass


def _no_password() -> str:
    raise _Encrypted  # never a prompt on the terminal: the server has no one to ask


def _reason(exc: ssl.SSLError) -> str:
    text = str(exc)
    if "KEY_VALUES_MISMATCH" in text:
        return "the private key is not the certificate's"
    if "PEM" in text or "NO_START_LINE" in text or "no start line" in text:
        return "not a PEM certificate and a PEM private key"
    return f"cannot be used: {exc.reason or text}"


def ca_bundle(settings: Settings) -> Path | None:
    """The CA bundle clients are told to trust (the AWS config file, ``strongroom env``):
    ``tls_ca_bundle``, else the generated CA when the ``--dev`` certificate is served."""
    if not wanted(settings):
        return None
    if settings.tls_ca_bundle is not None:
        return settings.tls_ca_bundle
    if settings.tls_cert is None:
        return tls_dir(settings.data_dir) / CA_FILE
    return None


def files(settings: Settings) -> TlsFiles | None:
    """The files to serve https with, generating the ``--dev`` certificate in the data
    directory when no certificate is given (run after ``prepare`` made the directory);
    None when the endpoint serves plain http."""
    if not wanted(settings):
        return None
    if settings.tls_cert is not None and settings.tls_key is not None:
        return TlsFiles(settings.tls_cert, settings.tls_key, settings.tls_ca_bundle)
    return dev_certificate(settings.data_dir, settings.host)


def dev_certificate(data_dir: Path, host: str = "127.0.0.1") -> TlsFiles:
    """The ``--dev`` certificate in DATA_DIR/tls, made (or made again) when it is missing,
    expires within a day or does not name ``host``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory = tls_dir(data_dir)
    found = TlsFiles(directory / CERT_FILE, directory / KEY_FILE, directory / CA_FILE)
    names = _names(host)
    if _usable(found, names):
        return found
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Strongroom (--dev)"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Strongroom dev CA {now:%Y-%m-%d %H:%M:%S}"),
        ]
    )
    ca_public = ca_key.public_key()
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_public), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_general_names(names)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    _write(
        found.key,
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        0o600,
    )
    _write(found.cert, cert.public_bytes(pem) + ca.public_bytes(pem), 0o644)
    assert found.ca_bundle is not None
    _write(found.ca_bundle, ca.public_bytes(pem), 0o644)  # the last: it marks a whole set
    return found


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _names(host: str) -> list[str]:
    """The names the certificate is for: the loopback names and addresses, and ``host``
    when it is a particular address or name."""
    names = [*_LOOPBACK_NAMES, *_LOOPBACK_ADDRESSES]
    if host not in _ANY_ADDRESS and host not in names:
        names.append(host)
    return names


def _general_names(names: list[str]) -> list[x509.GeneralName]:
    from cryptography import x509

    result: list[x509.GeneralName] = []
    for name in names:
        try:
            result.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            result.append(x509.DNSName(name))
    return result


def _usable(found: TlsFiles, names: list[str]) -> bool:
    """Whether the generated files are all there, valid for more than a day, and name
    every one of ``names``."""
    from cryptography import x509

    if found.ca_bundle is None or not all(
        p.is_file() for p in (found.cert, found.key, found.ca_bundle)
    ):
        return False
    try:
        cert = x509.load_pem_x509_certificate(found.cert.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound, OSError):
        return False
    if cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC) < _RENEW_BEFORE:
        return False
    have = {str(n) for n in san.get_values_for_type(x509.DNSName)}
    have |= {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    return all(str(ipaddress.ip_address(n)) in have if _is_ip(n) else n in have for n in names)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` whole (a temporary file renamed over it) with ``mode``."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def uvicorn_options(found: TlsFiles | None) -> dict[str, str]:
    """uvicorn's ssl options for ``found`` (none for plain http)."""
    if found is None:
        return {}
    return {"ssl_certfile": str(found.cert), "ssl_keyfile": str(found.key)}
