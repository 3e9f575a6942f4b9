"""Trust anchor certificates of HSM clusters: PEM text compared by the certificate it holds."""

from __future__ import annotations

from datetime import datetime, timedelta

# cryptography's X.509 module is imported by the functions: about 0.03 s a start, and
# only the custom key store operations compare trust anchors.


def certificate_der(pem: str) -> bytes | None:
    """The DER of the one X.509 certificate in ``pem``; None when ``pem`` holds none (two
    PEM texts name the same trust anchor when their certificates' DER are equal, whatever
    their line endings or wrapping)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except (ValueError, UnicodeEncodeError):
        return None
    return cert.public_bytes(Encoding.DER)


def same_trust_anchor(a: str | None, b: str | None) -> bool:
    """Whether two PEM texts hold the same certificate (unparseable or absent text matches
    nothing: an external key store has no trust anchor)."""
    if a is None or b is None:
        return False
    der_a, der_b = certificate_der(a), certificate_der(b)
    return der_a is not None and der_a == der_b


def self_signed_trust_anchor(common_name: str, now: datetime) -> str:
    """A new self-signed CA certificate (ECDSA P-256, ten years from ``now``) as PEM text:
    the trust anchor of a cluster made on this machine (``hsm-cluster add --softhsm``). Its
    private key is thrown away: nothing here signs with it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(Encoding.PEM).decode()
