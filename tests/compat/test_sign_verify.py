"""Sign and Verify with boto3 and the AWS CLI: every signing algorithm of every key spec,
checked outside Strongroom with `openssl` and `cryptography` using only GetPublicKey's key;
MessageType RAW, DIGEST and EXTERNAL_MU; the limits and AWS's errors."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

from conftest import aws_cli

from ._support import (
    DRY_RUN,
    SIGNING_ALGORITHMS,
    KeyMaker,
    assert_kms_error,
    usage_error,
)

pytestmark = pytest.mark.compat

HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
# Ed25519ph (ED25519_PH_SHA_512) is refused by this server: pyca/cryptography has no HashEdDSA.
SIGNING = [
    (spec, algorithm)
    for spec, algorithms in SIGNING_ALGORITHMS.items()
    for algorithm in algorithms
    if algorithm != "ED25519_PH_SHA_512"
]
HASHED = [(s, a) for s, a in SIGNING if a.startswith(("RSASSA", "ECDSA"))]
OPENSSL = shutil.which("openssl")


def _hash(algorithm: str) -> hashes.HashAlgorithm:
    return HASHES[algorithm[-3:]]()


def _verify_with_cryptography(
    public_der: bytes, algorithm: str, message: bytes, sig: bytes
) -> None:
    """Verify as any other party would: the AWS key spec reference's definition of each
    algorithm, the public key from GetPublicKey, nothing of Strongroom's. Raises
    InvalidSignature when the signature does not verify."""
    public: Any = serialization.load_der_public_key(public_der)
    if algorithm.startswith("RSASSA_PSS"):
        h = _hash(algorithm)
        pss = padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)  # salt = hash length
        public.verify(sig, message, pss, h)
    elif algorithm.startswith("RSASSA_PKCS1_V1_5"):
        public.verify(sig, message, padding.PKCS1v15(), _hash(algorithm))
    elif algorithm.startswith("ECDSA"):
        public.verify(sig, message, ec.ECDSA(_hash(algorithm)))
    else:  # ED25519_SHA_512 (PureEdDSA) and ML_DSA_SHAKE_256 (pure ML-DSA, empty context)
        public.verify(sig, message)


def _openssl_version() -> tuple[int, int]:
    assert OPENSSL is not None
    out = subprocess.run([OPENSSL, "version"], capture_output=True, text=True, check=True)
    found = re.search(r"(\d+)\.(\d+)", out.stdout)
    assert found is not None
    return int(found.group(1)), int(found.group(2))


def _verify_with_openssl(
    tmp: Path, public_der: bytes, algorithm: str, message: bytes, sig: bytes
) -> subprocess.CompletedProcess[str]:
    assert OPENSSL is not None
    (tmp / "pub.der").write_bytes(public_der)
    (tmp / "msg").write_bytes(message)
    (tmp / "sig").write_bytes(sig)
    subprocess.run(
        [
            OPENSSL,
            "pkey",
            "-pubin",
            "-inform",
            "DER",
            "-in",
            tmp / "pub.der",
            "-out",
            tmp / "pub.pem",
        ],
        check=True,
        capture_output=True,
    )
    if algorithm.startswith(("RSASSA", "ECDSA")):
        cmd = [OPENSSL, "dgst", f"-sha{algorithm[-3:]}", "-verify", tmp / "pub.pem"]
        if algorithm.startswith("RSASSA_PSS"):
            salt = str(_hash(algorithm).digest_size)
            cmd += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", f"rsa_pss_saltlen:{salt}"]
        cmd += ["-signature", tmp / "sig", tmp / "msg"]
    else:
        cmd = [OPENSSL, "pkeyutl", "-verify", "-pubin", "-inkey", tmp / "pub.pem", "-rawin"]
        cmd += ["-in", tmp / "msg", "-sigfile", tmp / "sig"]
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True)


# -- every algorithm, verified outside ------------------------------------------------


@pytest.mark.parametrize(("spec", "algorithm"), SIGNING)
def test_signature_verifies_with_cryptography_openssl_and_verify(
    kms: Any, key_of: KeyMaker, tmp_path: Path, spec: str, algorithm: str
) -> None:
    meta = key_of(spec, "SIGN_VERIFY")
    message = b"signed by Strongroom " + os.urandom(16)
    out = kms.sign(KeyId=meta["KeyId"], Message=message, SigningAlgorithm=algorithm)
    assert out["KeyId"] == meta["Arn"] and out["SigningAlgorithm"] == algorithm
    signature = out["Signature"]
    public_der = kms.get_public_key(KeyId=meta["KeyId"])["PublicKey"]

    _verify_with_cryptography(public_der, algorithm, message, signature)
    verified = kms.verify(
        KeyId=meta["KeyId"], Message=message, Signature=signature, SigningAlgorithm=algorithm
    )
    assert verified["SignatureValid"] is True
    assert verified["KeyId"] == meta["Arn"] and verified["SigningAlgorithm"] == algorithm

    if OPENSSL is None:
        pytest.skip("openssl is not installed")
    if algorithm == "ML_DSA_SHAKE_256" and _openssl_version() < (3, 5):
        pytest.skip("openssl before 3.5 has no ML-DSA (verified with cryptography above)")
    result = _verify_with_openssl(tmp_path, public_der, algorithm, message, signature)
    # dgst says "Verified OK", pkeyutl "Signature Verified Successfully".
    assert result.returncode == 0, result
    assert re.search(r"Verified (OK|Successfully)", result.stdout), result
    bad = _verify_with_openssl(tmp_path, public_der, algorithm, message + b"!", signature)
    assert bad.returncode != 0


@pytest.mark.parametrize(("spec", "algorithm"), HASHED)
def test_raw_and_digest_signatures_both_verify_against_the_message(
    kms: Any, key_of: KeyMaker, spec: str, algorithm: str
) -> None:
    meta = key_of(spec, "SIGN_VERIFY")
    message = os.urandom(100)
    digest = hashlib.new(f"sha{algorithm[-3:]}", message).digest()
    public_der = kms.get_public_key(KeyId=meta["KeyId"])["PublicKey"]
    raw = kms.sign(KeyId=meta["KeyId"], Message=message, SigningAlgorithm=algorithm)["Signature"]
    of_digest = kms.sign(
        KeyId=meta["KeyId"], Message=digest, MessageType="DIGEST", SigningAlgorithm=algorithm
    )["Signature"]
    for signature in (raw, of_digest):
        _verify_with_cryptography(public_der, algorithm, message, signature)
        for message_type, given in (("RAW", message), ("DIGEST", digest)):
            assert kms.verify(
                KeyId=meta["KeyId"],
                Message=given,
                MessageType=message_type,
                Signature=signature,
                SigningAlgorithm=algorithm,
            )["SignatureValid"]


@pytest.mark.parametrize(("spec", "algorithm"), HASHED)
def test_digest_of_the_wrong_length_fails_with_aws_message(
    kms: Any, key_of: KeyMaker, spec: str, algorithm: str
) -> None:
    meta = key_of(spec, "SIGN_VERIFY")
    digest = os.urandom(int(algorithm[-3:]) // 8 + 1)
    for call, extra in ((kms.sign, {}), (kms.verify, {"Signature": b"s"})):
        assert_kms_error(
            "ValidationException",
            call,
            message=f"Digest is invalid length for algorithm {algorithm}.",  # recorded
            KeyId=meta["KeyId"],
            Message=digest,
            MessageType="DIGEST",
            SigningAlgorithm=algorithm,
            **extra,
        )


# -- Verify that fails ----------------------------------------------------------------


@pytest.mark.parametrize(
    "spec", ["RSA_2048", "ECC_NIST_P256", "ECC_NIST_EDWARDS25519", "ML_DSA_44"]
)
def test_verify_of_a_bad_signature_fails_with_empty_invalid_signature(
    kms: Any, key_of: KeyMaker, spec: str
) -> None:
    meta = key_of(spec, "SIGN_VERIFY")
    algorithm = SIGNING_ALGORITHMS[spec][0]
    signature = kms.sign(KeyId=meta["KeyId"], Message=b"genuine", SigningAlgorithm=algorithm)[
        "Signature"
    ]
    flipped = signature[:-1] + bytes([signature[-1] ^ 1])
    for message, sig in ((b"genuine", flipped), (b"forged", signature), (b"genuine", b"\x00")):
        assert_kms_error(
            "KMSInvalidSignatureException",
            kms.verify,
            message="",
            KeyId=meta["KeyId"],
            Message=message,
            Signature=sig,
            SigningAlgorithm=algorithm,
        )


def test_verify_with_another_key_or_padding_fails(kms: Any, key_of: KeyMaker) -> None:
    meta = key_of("RSA_2048", "SIGN_VERIFY")
    other = key_of("RSA_3072", "SIGN_VERIFY")
    signature = kms.sign(
        KeyId=meta["KeyId"], Message=b"m", SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256"
    )["Signature"]
    for key_id, algorithm in (
        (meta["KeyId"], "RSASSA_PSS_SHA_256"),
        (other["KeyId"], "RSASSA_PKCS1_V1_5_SHA_256"),
    ):
        assert_kms_error(
            "KMSInvalidSignatureException",
            kms.verify,
            KeyId=key_id,
            Message=b"m",
            Signature=signature,
            SigningAlgorithm=algorithm,
        )


# -- message types and limits ---------------------------------------------------------


def test_message_of_4096_bytes_is_signed_and_4097_is_refused(
    kms: Any, raw_kms: Any, key_of: KeyMaker
) -> None:
    meta = key_of("ECC_NIST_P256", "SIGN_VERIFY")
    message = os.urandom(4096)
    signature = kms.sign(KeyId=meta["KeyId"], Message=message, SigningAlgorithm="ECDSA_SHA_256")[
        "Signature"
    ]
    public_der = kms.get_public_key(KeyId=meta["KeyId"])["PublicKey"]
    _verify_with_cryptography(public_der, "ECDSA_SHA_256", message, signature)
    for call, extra in ((raw_kms.sign, {}), (raw_kms.verify, {"Signature": signature})):
        assert_kms_error(
            "ValidationException",
            call,
            message="1 validation error detected: Value at 'message' failed to satisfy "
            "constraint: Member must have length less than or equal to 4096",
            KeyId=meta["KeyId"],
            Message=message + b"x",
            SigningAlgorithm="ECDSA_SHA_256",
            **extra,
        )


@pytest.mark.parametrize(
    ("spec", "algorithm", "message_type"),
    [
        ("ECC_NIST_EDWARDS25519", "ED25519_SHA_512", "DIGEST"),
        ("ECC_NIST_EDWARDS25519", "ED25519_PH_SHA_512", "RAW"),
        ("ML_DSA_65", "ML_DSA_SHAKE_256", "DIGEST"),
        ("ECC_NIST_P256", "ECDSA_SHA_256", "EXTERNAL_MU"),
    ],
)
def test_message_type_the_algorithm_does_not_take_fails_with_validation(
    kms: Any, key_of: KeyMaker, spec: str, algorithm: str, message_type: str
) -> None:
    # Sign doc: "ED25519_SHA_512 ... requires MessageType:RAW, ED25519_PH_SHA_512 requires
    # MessageType:DIGEST. These message types cannot be used interchangeably."
    meta = key_of(spec, "SIGN_VERIFY")
    assert_kms_error(
        "ValidationException",
        kms.sign,
        KeyId=meta["KeyId"],
        Message=os.urandom(64),
        MessageType=message_type,
        SigningAlgorithm=algorithm,
    )


@pytest.mark.parametrize("spec", ["ML_DSA_44", "ML_DSA_65", "ML_DSA_87"])
def test_ml_dsa_external_mu_signature_verifies_as_a_signature_of_the_message(
    kms: Any, key_of: KeyMaker, spec: str
) -> None:
    """The caller computes mu itself (FIPS 204: SHAKE256(SHAKE256(pk, 64) || 0 || 0 || M));
    Sign over that mu gives a signature of M, which a RAW Verify and the public key accept."""
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    meta = key_of(spec, "SIGN_VERIFY")
    public_der = kms.get_public_key(KeyId=meta["KeyId"])["PublicKey"]
    public = load_der_public_key(public_der)
    message = b"external mu: the message never leaves the caller"
    tr = hashlib.shake_256(public.public_bytes_raw()).digest(64)
    mu = hashlib.shake_256(tr + b"\x00\x00" + message).digest(64)
    signature = kms.sign(
        KeyId=meta["KeyId"],
        Message=mu,
        MessageType="EXTERNAL_MU",
        SigningAlgorithm="ML_DSA_SHAKE_256",
    )["Signature"]
    public.verify(signature, message)  # raises InvalidSignature if not
    assert kms.verify(
        KeyId=meta["KeyId"],
        Message=message,
        MessageType="RAW",
        Signature=signature,
        SigningAlgorithm="ML_DSA_SHAKE_256",
    )["SignatureValid"]


@pytest.mark.parametrize(
    ("spec", "algorithm", "message_type"),
    [("ECC_NIST_EDWARDS25519", "ED25519_PH_SHA_512", "DIGEST")],
)
def test_what_aws_offers_and_this_server_cannot_do_fails_with_unsupported_operation(
    kms: Any, key_of: KeyMaker, spec: str, algorithm: str, message_type: str
) -> None:
    meta = key_of(spec, "SIGN_VERIFY")
    response = assert_kms_error(
        "UnsupportedOperationException",
        kms.sign,
        KeyId=meta["KeyId"],
        Message=os.urandom(64),
        MessageType=message_type,
        SigningAlgorithm=algorithm,
    )
    assert algorithm in response["Error"]["Message"]


# -- keys that cannot sign ------------------------------------------------------------


def test_sign_with_an_algorithm_of_another_spec_fails_with_invalid_key_usage(
    kms: Any, key_of: KeyMaker
) -> None:
    meta = key_of("ECC_NIST_P256", "SIGN_VERIFY")
    for algorithm in ("ECDSA_SHA_384", "RSASSA_PSS_SHA_256", "ML_DSA_SHAKE_256"):
        assert_kms_error(
            "InvalidKeyUsageException",
            kms.sign,
            message=f"Algorithm {algorithm} is incompatible with key spec ECC_NIST_P256.",
            KeyId=meta["KeyId"],
            Message=b"m",
            SigningAlgorithm=algorithm,
        )


def test_sign_and_verify_with_keys_of_other_usages_fail_with_aws_message(
    kms: Any, key_of: KeyMaker, key: dict[str, Any]
) -> None:
    hmac_key = key_of("HMAC_256", "GENERATE_VERIFY_MAC")
    rsa_key = key_of("RSA_2048", "ENCRYPT_DECRYPT")
    # Both texts recorded against AWS (LocalStack snapshot test_error_messaging_for_invalid_keys).
    assert_kms_error(
        "InvalidKeyUsageException",
        kms.sign,
        message=usage_error(hmac_key["Arn"], "GENERATE_VERIFY_MAC", "Sign"),
        KeyId=hmac_key["KeyId"],
        Message=b"m",
        SigningAlgorithm="ECDSA_SHA_256",
    )
    for meta in (key, rsa_key):
        assert_kms_error(
            "InvalidKeyUsageException",
            kms.verify,
            message=usage_error(meta["Arn"], "ENCRYPT_DECRYPT", "Verify"),
            KeyId=meta["KeyId"],
            Message=b"m",
            Signature=b"s",
            SigningAlgorithm="RSASSA_PSS_SHA_256",
        )


def test_sign_with_disabled_or_deleted_key_fails_with_key_state_error(kms: Any) -> None:
    meta = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    arguments = {"KeyId": meta["KeyId"], "Message": b"m", "SigningAlgorithm": "ECDSA_SHA_256"}
    signature = kms.sign(**arguments)["Signature"]
    kms.disable_key(KeyId=meta["KeyId"])
    message = f"{meta['Arn']} is disabled."
    assert_kms_error("DisabledException", kms.sign, message=message, **arguments)
    assert_kms_error(
        "DisabledException", kms.verify, message=message, Signature=signature, **arguments
    )
    kms.schedule_key_deletion(KeyId=meta["KeyId"], PendingWindowInDays=7)
    assert_kms_error(
        "KMSInvalidStateException",
        kms.sign,
        message=f"{meta['Arn']} is pending deletion.",
        **arguments,
    )


def test_sign_and_verify_honour_dry_run(kms: Any, key_of: KeyMaker) -> None:
    meta = key_of("ECC_NIST_P256", "SIGN_VERIFY")
    arguments = {"KeyId": meta["KeyId"], "Message": b"m", "SigningAlgorithm": "ECDSA_SHA_256"}
    signature = kms.sign(**arguments)["Signature"]
    for call, extra in ((kms.sign, {}), (kms.verify, {"Signature": signature})):
        response = assert_kms_error(
            "DryRunOperationException", call, message=DRY_RUN, DryRun=True, **arguments, **extra
        )
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 400


# -- the AWS CLI ----------------------------------------------------------------------


def test_aws_cli_gets_the_public_key_signs_and_verifies(
    server: Any, key_of: KeyMaker, tmp_path: Path
) -> None:
    meta = key_of("ECC_NIST_P384", "SIGN_VERIFY")
    message = tmp_path / "message.txt"
    message.write_bytes(b"signed through the AWS CLI")
    sign = [
        "sign",
        "--key-id",
        meta["KeyId"],
        "--message",
        f"fileb://{message}",
        "--message-type",
        "RAW",
        "--signing-algorithm",
        "ECDSA_SHA_384",
    ]
    # Each `aws` start costs about a second: run the independent calls side by side.
    with ThreadPoolExecutor(2) as pool:
        got_public = pool.submit(aws_cli, server, "get-public-key", "--key-id", meta["Arn"])
        got_signed = pool.submit(aws_cli, server, *sign)
        public, signed = (
            json.loads(got_public.result().stdout),
            json.loads(got_signed.result().stdout),
        )
    assert public["KeySpec"] == "ECC_NIST_P384" and public["KeyUsage"] == "SIGN_VERIFY"
    assert public["SigningAlgorithms"] == ["ECDSA_SHA_384"]
    signature = base64.b64decode(signed["Signature"])
    _verify_with_cryptography(
        base64.b64decode(public["PublicKey"]), "ECDSA_SHA_384", message.read_bytes(), signature
    )
    (tmp_path / "sig").write_bytes(signature)
    (tmp_path / "bad").write_bytes(signature[:-1] + bytes([signature[-1] ^ 1]))
    verify = [
        "verify",
        "--key-id",
        meta["KeyId"],
        "--message",
        f"fileb://{message}",
        "--signing-algorithm",
        "ECDSA_SHA_384",
        "--signature",
    ]
    with ThreadPoolExecutor(2) as pool:
        good = pool.submit(aws_cli, server, *verify, f"fileb://{tmp_path / 'sig'}")
        bad = pool.submit(aws_cli, server, *verify, f"fileb://{tmp_path / 'bad'}", check=False)
        ok, refused = json.loads(good.result().stdout), bad.result()
    assert ok["SignatureValid"] is True and ok["KeyId"] == meta["Arn"]
    assert refused.returncode != 0
    assert "(KMSInvalidSignatureException)" in refused.stderr
