"""The key spec tables against the KMS service model and the AWS docs, and AWS's error texts."""

from __future__ import annotations

import hashlib
import inspect
from typing import Any

import pytest
from botocore.loaders import create_loader
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa, mlkem

from strongroom.crypto.specs import (
    DATA_KEY_PAIR_SPECS,
    HMAC_KEY_BYTES,
    KEY_SPECS,
    KEY_USAGE_REQUIRED,
    ML_KEM_CIPHERTEXT_BYTES,
    RSA_OAEP_MAX_PLAINTEXT,
    SIGNING_INPUT_BYTES,
    SIGNING_MESSAGE_TYPES,
    UNSUPPORTED_KEY_SPECS,
    UNSUPPORTED_SIGNING,
    check_encryption_algorithm,
    check_key_spec_usage,
    check_mac_algorithm,
    check_rsa_plaintext,
    check_signing_algorithm,
    check_signing_message,
    data_key_pair_key_spec,
    encapsulation_algorithms,
    encryption_algorithms,
    key_agreement_algorithms,
    key_algorithms,
    mac_algorithms,
    signing_algorithms,
)
from strongroom.domain.enums import (
    DataKeyPairSpec,
    EncapsulationAlgorithm,
    EncryptionAlgorithm,
    KeyAgreementAlgorithm,
    KeySpec,
    KeyUsage,
    MacAlgorithm,
    MessageType,
    SigningAlgorithm,
)
from strongroom.domain.errors import (
    InvalidKeyUsageException,
    UnsupportedOperationException,
    ValidationException,
)

pytestmark = pytest.mark.unit

S = KeySpec
U = KeyUsage
G = SigningAlgorithm
T = MessageType

_MODEL: dict[str, Any] = create_loader().load_service_model("kms", "service-2")


def _model_enum(shape: str) -> set[str]:
    """Values of an enum of the installed botocore model (empty if this model lacks it)."""
    return set(_MODEL["shapes"].get(shape, {}).get("enum", []))


@pytest.mark.parametrize(
    ("shape", "ours"),
    [
        ("KeySpec", KeySpec),
        ("KeyUsageType", KeyUsage),
        ("EncryptionAlgorithmSpec", EncryptionAlgorithm),
        ("SigningAlgorithmSpec", SigningAlgorithm),
        ("MacAlgorithmSpec", MacAlgorithm),
        ("KeyAgreementAlgorithmSpec", KeyAgreementAlgorithm),
        ("EncapsulationAlgorithmSpec", EncapsulationAlgorithm),
        ("MessageType", MessageType),
        ("DataKeyPairSpec", DataKeyPairSpec),
    ],
)
def test_every_value_of_the_model_enum_is_known(shape: str, ours: Any) -> None:
    # The installed model may be older than the one the enums follow (1.44.x adds ML-KEM),
    # never newer without a failure here.
    assert _model_enum(shape) <= {m.value for m in ours}


def test_every_key_spec_has_a_row_with_algorithms_for_each_usage() -> None:
    assert set(KEY_SPECS) == set(KeySpec)
    for spec, usages in KEY_SPECS.items():
        assert usages, spec
        for usage, algorithms in usages.items():
            assert algorithms, (spec, usage)
            assert len(set(algorithms)) == len(algorithms), (spec, usage)


# CreateKeyRequest.KeyUsage doc: "For asymmetric KMS keys with RSA key pairs, specify
# ENCRYPT_DECRYPT or SIGN_VERIFY. ... NIST-standard elliptic curve key pairs, specify
# SIGN_VERIFY or KEY_AGREEMENT. ... ECC_SECG_P256K1 ... SIGN_VERIFY. ... ML-DSA ...
# SIGN_VERIFY. ... ML-KEM ... ENCAPSULATE_DECAPSULATE. ... SM2 ... ENCRYPT_DECRYPT,
# SIGN_VERIFY, or KEY_AGREEMENT." KeySpec doc: "ECC_NIST_EDWARDS25519 (ed25519) - signing
# and verification only".
DOCUMENTED_USAGES: dict[KeySpec, set[KeyUsage]] = {
    S.SYMMETRIC_DEFAULT: {U.ENCRYPT_DECRYPT},
    **{s: {U.ENCRYPT_DECRYPT, U.SIGN_VERIFY} for s in (S.RSA_2048, S.RSA_3072, S.RSA_4096)},
    **{
        s: {U.SIGN_VERIFY, U.KEY_AGREEMENT}
        for s in (S.ECC_NIST_P256, S.ECC_NIST_P384, S.ECC_NIST_P521)
    },
    S.ECC_SECG_P256K1: {U.SIGN_VERIFY},
    S.ECC_NIST_EDWARDS25519: {U.SIGN_VERIFY},
    **{s: {U.GENERATE_VERIFY_MAC} for s in (S.HMAC_224, S.HMAC_256, S.HMAC_384, S.HMAC_512)},
    S.SM2: {U.ENCRYPT_DECRYPT, U.SIGN_VERIFY, U.KEY_AGREEMENT},
    **{s: {U.SIGN_VERIFY} for s in (S.ML_DSA_44, S.ML_DSA_65, S.ML_DSA_87)},
    **{s: {U.ENCAPSULATE_DECAPSULATE} for s in (S.ML_KEM_512, S.ML_KEM_768, S.ML_KEM_1024)},
}


@pytest.mark.parametrize("spec", list(KeySpec))
def test_key_usages_of_each_spec_are_the_documented_ones(spec: KeySpec) -> None:
    assert set(KEY_SPECS[spec]) == DOCUMENTED_USAGES[spec]


@pytest.mark.parametrize("spec", list(KeySpec))
@pytest.mark.parametrize("usage", list(KeyUsage))
def test_create_key_accepts_exactly_the_documented_usages(spec: KeySpec, usage: KeyUsage) -> None:
    if usage not in DOCUMENTED_USAGES[spec]:
        with pytest.raises(ValidationException) as e:
            check_key_spec_usage(spec, usage)
        assert e.value.message == f"KeyUsage {usage} is not compatible with KeySpec {spec}"
    elif spec in UNSUPPORTED_KEY_SPECS:
        with pytest.raises(UnsupportedOperationException) as u:
            check_key_spec_usage(spec, usage)
        assert spec.value in u.value.message
    else:
        assert check_key_spec_usage(spec, usage) is usage


def test_aws_text_for_key_agreement_on_rsa() -> None:
    with pytest.raises(ValidationException) as e:
        check_key_spec_usage(S.RSA_2048, U.KEY_AGREEMENT)
    assert e.value.message == "KeyUsage KEY_AGREEMENT is not compatible with KeySpec RSA_2048"


def test_symmetric_default_usage_may_be_left_out() -> None:
    assert check_key_spec_usage(S.SYMMETRIC_DEFAULT, None) is U.ENCRYPT_DECRYPT


@pytest.mark.parametrize("spec", [s for s in KeySpec if s is not S.SYMMETRIC_DEFAULT])
def test_every_other_spec_needs_a_key_usage(spec: KeySpec) -> None:
    with pytest.raises(ValidationException) as e:
        check_key_spec_usage(spec, None)
    assert e.value.message == KEY_USAGE_REQUIRED
    assert KEY_USAGE_REQUIRED == (
        "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."
    )


def test_only_sm2_and_ml_kem_512_are_refused() -> None:
    assert set(UNSUPPORTED_KEY_SPECS) == {S.SM2, S.ML_KEM_512}
    with pytest.raises(UnsupportedOperationException, match="KeySpec SM2 "):
        check_key_spec_usage(S.SM2, U.SIGN_VERIFY)
    with pytest.raises(UnsupportedOperationException, match="KeySpec ML_KEM_512 "):
        check_key_spec_usage(S.ML_KEM_512, U.ENCAPSULATE_DECAPSULATE)


def test_refusals_still_match_what_cryptography_can_do() -> None:
    # When pyca/cryptography grows ML-KEM-512 or Ed25519ph, these fail, and the
    # UNSUPPORTED_* tables should shrink. (External mu arrived in cryptography 50: sign_mu.)
    assert not hasattr(mlkem, "MLKEM512PrivateKey")
    assert list(inspect.signature(ed25519.Ed25519PrivateKey.sign).parameters) == ["self", "data"]
    for cls in (mldsa.MLDSA44PrivateKey, mldsa.MLDSA65PrivateKey, mldsa.MLDSA87PrivateKey):
        assert list(inspect.signature(cls.sign).parameters) == ["self", "data", "context"]
    assert set(UNSUPPORTED_SIGNING) == {(G.ED25519_PH_SHA_512, T.DIGEST)}


def test_describe_key_lists_rsa_algorithms_in_aws_order() -> None:
    assert encryption_algorithms(S.RSA_3072) == (
        EncryptionAlgorithm.RSAES_OAEP_SHA_1,
        EncryptionAlgorithm.RSAES_OAEP_SHA_256,
    )
    assert [a.value for a in signing_algorithms(S.RSA_4096)] == [
        "RSASSA_PKCS1_V1_5_SHA_256",
        "RSASSA_PKCS1_V1_5_SHA_384",
        "RSASSA_PKCS1_V1_5_SHA_512",
        "RSASSA_PSS_SHA_256",
        "RSASSA_PSS_SHA_384",
        "RSASSA_PSS_SHA_512",
    ]


@pytest.mark.parametrize(
    ("spec", "algorithm"),
    [
        (S.ECC_NIST_P256, G.ECDSA_SHA_256),
        (S.ECC_NIST_P384, G.ECDSA_SHA_384),
        (S.ECC_NIST_P521, G.ECDSA_SHA_512),
        (S.ECC_SECG_P256K1, G.ECDSA_SHA_256),
    ],
)
def test_each_curve_signs_with_the_one_ecdsa_hash_aws_pairs_it_with(
    spec: KeySpec, algorithm: SigningAlgorithm
) -> None:
    assert signing_algorithms(spec) == (algorithm,)


def test_algorithm_lists_of_the_other_specs() -> None:
    assert signing_algorithms(S.ECC_NIST_EDWARDS25519) == (
        G.ED25519_SHA_512,
        G.ED25519_PH_SHA_512,
    )
    assert signing_algorithms(S.ML_DSA_65) == (G.ML_DSA_SHAKE_256,)
    assert mac_algorithms(S.HMAC_384) == (MacAlgorithm.HMAC_SHA_384,)
    assert key_agreement_algorithms(S.ECC_NIST_P521) == (KeyAgreementAlgorithm.ECDH,)
    assert key_agreement_algorithms(S.ECC_SECG_P256K1) == ()
    assert encapsulation_algorithms(S.ML_KEM_1024) == (EncapsulationAlgorithm.ML_KEM,)
    assert encryption_algorithms(S.SYMMETRIC_DEFAULT) == (EncryptionAlgorithm.SYMMETRIC_DEFAULT,)


def test_describe_key_shows_only_the_list_of_the_keys_usage() -> None:
    assert key_algorithms(S.RSA_2048, U.ENCRYPT_DECRYPT) == encryption_algorithms(S.RSA_2048)
    assert key_algorithms(S.ECC_NIST_P256, U.KEY_AGREEMENT) == (KeyAgreementAlgorithm.ECDH,)
    assert key_algorithms(S.ECC_NIST_P256, U.ENCRYPT_DECRYPT) == ()


@pytest.mark.parametrize(("spec", "algorithm"), list(RSA_OAEP_MAX_PLAINTEXT))
def test_rsa_oaep_limits_follow_the_documented_formula(
    spec: KeySpec, algorithm: EncryptionAlgorithm
) -> None:
    # Key spec reference: (key_size_in_bits / 8) - (2 * hash_length_in_bits / 8) - 2.
    bits = int(spec.value.removeprefix("RSA_"))
    hash_bytes = {
        EncryptionAlgorithm.RSAES_OAEP_SHA_1: 20,
        EncryptionAlgorithm.RSAES_OAEP_SHA_256: 32,
    }
    assert RSA_OAEP_MAX_PLAINTEXT[(spec, algorithm)] == bits // 8 - 2 * hash_bytes[algorithm] - 2


def test_rsa_oaep_limits_are_the_encrypt_docs_numbers() -> None:
    sha1, sha256 = EncryptionAlgorithm.RSAES_OAEP_SHA_1, EncryptionAlgorithm.RSAES_OAEP_SHA_256
    assert [RSA_OAEP_MAX_PLAINTEXT[(s, sha1)] for s in (S.RSA_2048, S.RSA_3072, S.RSA_4096)] == [
        214,
        342,
        470,
    ]
    assert [RSA_OAEP_MAX_PLAINTEXT[(s, sha256)] for s in (S.RSA_2048, S.RSA_3072, S.RSA_4096)] == [
        190,
        318,
        446,
    ]


def test_rsa_plaintext_over_the_limit_gets_aws_text() -> None:
    check_rsa_plaintext(S.RSA_2048, EncryptionAlgorithm.RSAES_OAEP_SHA_1, b"x" * 214)
    with pytest.raises(ValidationException) as e:
        check_rsa_plaintext(S.RSA_2048, EncryptionAlgorithm.RSAES_OAEP_SHA_1, b"x" * 215)
    assert e.value.message == (
        "Algorithm RSAES_OAEP_SHA_1 and key spec RSA_2048 cannot encrypt data larger than "
        "214 bytes."
    )


@pytest.mark.parametrize(("algorithm", "message_type"), list(SIGNING_INPUT_BYTES))
def test_digest_lengths_are_the_hash_output_lengths(
    algorithm: SigningAlgorithm, message_type: MessageType
) -> None:
    names = {"SHA_256": "sha256", "SHA_384": "sha384", "SHA_512": "sha512", "SHAKE_256": None}
    suffix = "_".join(algorithm.value.split("_")[-2:])
    if message_type is T.EXTERNAL_MU:
        assert SIGNING_INPUT_BYTES[(algorithm, message_type)] == 64  # FIPS 204 §6.2 mu
    elif algorithm is G.SM2DSA:
        assert SIGNING_INPUT_BYTES[(algorithm, message_type)] == 32  # SM3
    else:
        name = names[suffix]
        assert name is not None
        assert SIGNING_INPUT_BYTES[(algorithm, message_type)] == hashlib.new(name).digest_size


def test_every_algorithm_taking_digest_or_mu_has_a_length() -> None:
    for algorithm, types in SIGNING_MESSAGE_TYPES.items():
        for message_type in types - {T.RAW}:
            assert (algorithm, message_type) in SIGNING_INPUT_BYTES
    assert set(SIGNING_MESSAGE_TYPES) == set(SigningAlgorithm)


def test_wrong_digest_length_gets_aws_text() -> None:
    with pytest.raises(ValidationException) as e:
        check_signing_message(S.ECC_NIST_P256, G.ECDSA_SHA_256, T.DIGEST, b"\0" * 31)
    assert e.value.message == "Digest is invalid length for algorithm ECDSA_SHA_256."


@pytest.mark.parametrize(
    ("spec", "algorithm"),
    [
        (S.ECC_NIST_P256, G.ECDSA_SHA_384),
        (S.RSA_2048, G.ECDSA_SHA_256),
        (S.ECC_NIST_EDWARDS25519, G.ECDSA_SHA_512),
        (S.ML_DSA_44, G.ED25519_SHA_512),
        (S.HMAC_256, G.RSASSA_PSS_SHA_256),
    ],
)
def test_signing_algorithm_of_another_spec_is_invalid_key_usage(
    spec: KeySpec, algorithm: SigningAlgorithm
) -> None:
    with pytest.raises(InvalidKeyUsageException) as e:
        check_signing_algorithm(spec, algorithm)
    assert e.value.message == f"Algorithm {algorithm} is incompatible with key spec {spec}."


def test_mac_algorithm_of_another_spec_gets_aws_text() -> None:
    with pytest.raises(InvalidKeyUsageException) as e:
        check_mac_algorithm(S.HMAC_224, MacAlgorithm.HMAC_SHA_256)
    assert e.value.message == "Algorithm HMAC_SHA_256 is incompatible with key spec HMAC_224."


def test_encryption_algorithm_of_another_spec_is_invalid_key_usage() -> None:
    with pytest.raises(InvalidKeyUsageException) as e:
        check_encryption_algorithm(S.RSA_2048, EncryptionAlgorithm.SYMMETRIC_DEFAULT)
    assert e.value.message == (
        "Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048."
    )


@pytest.mark.parametrize(
    ("algorithm", "message_type", "text"),
    [
        (G.ED25519_SHA_512, T.DIGEST, "Message type DIGEST is incompatible with algorithm "),
        (G.ED25519_PH_SHA_512, T.RAW, "Message type RAW is incompatible with algorithm "),
        (G.ECDSA_SHA_256, T.EXTERNAL_MU, "Message type EXTERNAL_MU is incompatible with "),
    ],
)
def test_message_type_of_another_algorithm_is_a_validation_error(
    algorithm: SigningAlgorithm, message_type: MessageType, text: str
) -> None:
    spec = S.ECC_NIST_EDWARDS25519 if algorithm.value.startswith("ED") else S.ECC_NIST_P256
    with pytest.raises(ValidationException, match=f"^{text}"):
        check_signing_message(spec, algorithm, message_type, b"\0" * 64)


def test_ml_dsa_refuses_digest_naming_the_key_spec() -> None:
    with pytest.raises(ValidationException) as e:
        check_signing_message(S.ML_DSA_44, G.ML_DSA_SHAKE_256, T.DIGEST, b"\0" * 64)
    assert e.value.message == "Message type DIGEST is incompatible with key spec ML_DSA_44."


def test_data_key_pair_specs_name_the_key_spec_of_their_material() -> None:
    assert {k.value for k in DATA_KEY_PAIR_SPECS} == {v.value for v in DATA_KEY_PAIR_SPECS.values()}
    assert data_key_pair_key_spec(DataKeyPairSpec.ECC_NIST_EDWARDS25519) is S.ECC_NIST_EDWARDS25519
    for refused in (DataKeyPairSpec.SM2, DataKeyPairSpec.ML_KEM_512):
        with pytest.raises(UnsupportedOperationException, match=f"KeyPairSpec {refused} "):
            data_key_pair_key_spec(refused)


def test_hmac_key_lengths_are_the_bits_in_the_spec_name() -> None:
    for spec, size in HMAC_KEY_BYTES.items():
        assert size * 8 == int(spec.value.removeprefix("HMAC_"))


def test_ml_kem_ciphertext_lengths_are_the_encapsulate_docs_numbers() -> None:
    assert ML_KEM_CIPHERTEXT_BYTES == {S.ML_KEM_512: 768, S.ML_KEM_768: 1088, S.ML_KEM_1024: 1568}
