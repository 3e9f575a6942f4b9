"""Enumerations whose values are the exact AWS wire strings."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum, StrEnum
from typing import TypeVar

E = TypeVar("E", bound=StrEnum)


def by_value(kind: type[E]) -> Mapping[str, E]:
    """``kind``'s members by wire value: for the request path, where ``kind(value)`` would
    be two calls into Python (``EnumType.__call__``, ``Enum.__new__``), ~4,000
    instructions, and a dict read ~200. The protocol layer has checked the value against
    the model's enum; one the model has and ``kind`` has not is a KeyError (as
    ``kind(value)``'s ValueError, an internal error)."""
    return {member.value: member for member in kind}


class KeyState(StrEnum):
    CREATING = "Creating"
    ENABLED = "Enabled"
    DISABLED = "Disabled"
    PENDING_DELETION = "PendingDeletion"
    PENDING_IMPORT = "PendingImport"
    PENDING_REPLICA_DELETION = "PendingReplicaDeletion"
    UNAVAILABLE = "Unavailable"
    UPDATING = "Updating"


class KeySpec(StrEnum):
    SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT"
    RSA_2048 = "RSA_2048"
    RSA_3072 = "RSA_3072"
    RSA_4096 = "RSA_4096"
    ECC_NIST_P256 = "ECC_NIST_P256"
    ECC_NIST_P384 = "ECC_NIST_P384"
    ECC_NIST_P521 = "ECC_NIST_P521"
    ECC_SECG_P256K1 = "ECC_SECG_P256K1"
    ECC_NIST_EDWARDS25519 = "ECC_NIST_EDWARDS25519"
    HMAC_224 = "HMAC_224"
    HMAC_256 = "HMAC_256"
    HMAC_384 = "HMAC_384"
    HMAC_512 = "HMAC_512"
    SM2 = "SM2"
    ML_DSA_44 = "ML_DSA_44"
    ML_DSA_65 = "ML_DSA_65"
    ML_DSA_87 = "ML_DSA_87"
    ML_KEM_512 = "ML_KEM_512"
    ML_KEM_768 = "ML_KEM_768"
    ML_KEM_1024 = "ML_KEM_1024"

    @property
    def family(self) -> SpecFamily:
        """The kind of key material of the spec (``SPEC_FAMILY``)."""
        return SPEC_FAMILY[self]


class SpecFamily(Enum):
    """The kinds of key material: what rules about keys (rotation, grant operations, data keys,
    public keys) look up instead of naming specs one by one."""

    SYMMETRIC = "symmetric"
    HMAC = "hmac"
    RSA = "rsa"
    ECC = "ecc"
    SM2 = "sm2"
    ML_DSA = "ml-dsa"
    ML_KEM = "ml-kem"

    @property
    def key_pair(self) -> bool:
        """Whether keys of the family are asymmetric key pairs (they have a public key)."""
        return self not in (SpecFamily.SYMMETRIC, SpecFamily.HMAC)


SPEC_FAMILY: dict[KeySpec, SpecFamily] = {
    KeySpec.SYMMETRIC_DEFAULT: SpecFamily.SYMMETRIC,
    KeySpec.HMAC_224: SpecFamily.HMAC,
    KeySpec.HMAC_256: SpecFamily.HMAC,
    KeySpec.HMAC_384: SpecFamily.HMAC,
    KeySpec.HMAC_512: SpecFamily.HMAC,
    KeySpec.RSA_2048: SpecFamily.RSA,
    KeySpec.RSA_3072: SpecFamily.RSA,
    KeySpec.RSA_4096: SpecFamily.RSA,
    KeySpec.ECC_NIST_P256: SpecFamily.ECC,
    KeySpec.ECC_NIST_P384: SpecFamily.ECC,
    KeySpec.ECC_NIST_P521: SpecFamily.ECC,
    KeySpec.ECC_SECG_P256K1: SpecFamily.ECC,
    KeySpec.ECC_NIST_EDWARDS25519: SpecFamily.ECC,
    KeySpec.SM2: SpecFamily.SM2,
    KeySpec.ML_DSA_44: SpecFamily.ML_DSA,
    KeySpec.ML_DSA_65: SpecFamily.ML_DSA,
    KeySpec.ML_DSA_87: SpecFamily.ML_DSA,
    KeySpec.ML_KEM_512: SpecFamily.ML_KEM,
    KeySpec.ML_KEM_768: SpecFamily.ML_KEM,
    KeySpec.ML_KEM_1024: SpecFamily.ML_KEM,
}


class KeyUsage(StrEnum):
    ENCRYPT_DECRYPT = "ENCRYPT_DECRYPT"
    SIGN_VERIFY = "SIGN_VERIFY"
    GENERATE_VERIFY_MAC = "GENERATE_VERIFY_MAC"
    KEY_AGREEMENT = "KEY_AGREEMENT"
    ENCAPSULATE_DECAPSULATE = "ENCAPSULATE_DECAPSULATE"


class Origin(StrEnum):
    AWS_KMS = "AWS_KMS"
    EXTERNAL = "EXTERNAL"
    AWS_CLOUDHSM = "AWS_CLOUDHSM"
    EXTERNAL_KEY_STORE = "EXTERNAL_KEY_STORE"


class KeyManager(StrEnum):
    AWS = "AWS"
    CUSTOMER = "CUSTOMER"


class MultiRegionKeyType(StrEnum):
    PRIMARY = "PRIMARY"
    REPLICA = "REPLICA"


class EncryptionAlgorithm(StrEnum):
    SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT"
    RSAES_OAEP_SHA_1 = "RSAES_OAEP_SHA_1"
    RSAES_OAEP_SHA_256 = "RSAES_OAEP_SHA_256"
    SM2PKE = "SM2PKE"


class DataKeySpec(StrEnum):
    AES_256 = "AES_256"
    AES_128 = "AES_128"


class SigningAlgorithm(StrEnum):
    RSASSA_PSS_SHA_256 = "RSASSA_PSS_SHA_256"
    RSASSA_PSS_SHA_384 = "RSASSA_PSS_SHA_384"
    RSASSA_PSS_SHA_512 = "RSASSA_PSS_SHA_512"
    RSASSA_PKCS1_V1_5_SHA_256 = "RSASSA_PKCS1_V1_5_SHA_256"
    RSASSA_PKCS1_V1_5_SHA_384 = "RSASSA_PKCS1_V1_5_SHA_384"
    RSASSA_PKCS1_V1_5_SHA_512 = "RSASSA_PKCS1_V1_5_SHA_512"
    ECDSA_SHA_256 = "ECDSA_SHA_256"
    ECDSA_SHA_384 = "ECDSA_SHA_384"
    ECDSA_SHA_512 = "ECDSA_SHA_512"
    SM2DSA = "SM2DSA"
    ML_DSA_SHAKE_256 = "ML_DSA_SHAKE_256"
    ED25519_SHA_512 = "ED25519_SHA_512"
    ED25519_PH_SHA_512 = "ED25519_PH_SHA_512"


class MacAlgorithm(StrEnum):
    HMAC_SHA_224 = "HMAC_SHA_224"
    HMAC_SHA_256 = "HMAC_SHA_256"
    HMAC_SHA_384 = "HMAC_SHA_384"
    HMAC_SHA_512 = "HMAC_SHA_512"


class KeyAgreementAlgorithm(StrEnum):
    ECDH = "ECDH"


class EncapsulationAlgorithm(StrEnum):
    ML_KEM = "ML_KEM"


class MessageType(StrEnum):
    RAW = "RAW"
    DIGEST = "DIGEST"
    EXTERNAL_MU = "EXTERNAL_MU"


class DataKeyPairSpec(StrEnum):
    RSA_2048 = "RSA_2048"
    RSA_3072 = "RSA_3072"
    RSA_4096 = "RSA_4096"
    ECC_NIST_P256 = "ECC_NIST_P256"
    ECC_NIST_P384 = "ECC_NIST_P384"
    ECC_NIST_P521 = "ECC_NIST_P521"
    ECC_SECG_P256K1 = "ECC_SECG_P256K1"
    SM2 = "SM2"
    ECC_NIST_EDWARDS25519 = "ECC_NIST_EDWARDS25519"
    ML_KEM_512 = "ML_KEM_512"
    ML_KEM_768 = "ML_KEM_768"
    ML_KEM_1024 = "ML_KEM_1024"


class ExpirationModel(StrEnum):
    KEY_MATERIAL_EXPIRES = "KEY_MATERIAL_EXPIRES"
    KEY_MATERIAL_DOES_NOT_EXPIRE = "KEY_MATERIAL_DOES_NOT_EXPIRE"


class ImportType(StrEnum):
    NEW_KEY_MATERIAL = "NEW_KEY_MATERIAL"
    EXISTING_KEY_MATERIAL = "EXISTING_KEY_MATERIAL"


class KeyMaterialState(StrEnum):
    NON_CURRENT = "NON_CURRENT"
    CURRENT = "CURRENT"
    PENDING_ROTATION = "PENDING_ROTATION"
    PENDING_MULTI_REGION_IMPORT_AND_ROTATION = "PENDING_MULTI_REGION_IMPORT_AND_ROTATION"


class ImportState(StrEnum):
    IMPORTED = "IMPORTED"
    PENDING_IMPORT = "PENDING_IMPORT"


class RotationType(StrEnum):
    AUTOMATIC = "AUTOMATIC"
    ON_DEMAND = "ON_DEMAND"


class IncludeKeyMaterial(StrEnum):
    ALL_KEY_MATERIAL = "ALL_KEY_MATERIAL"
    ROTATIONS_ONLY = "ROTATIONS_ONLY"


class WrappingAlgorithm(StrEnum):
    """The model's ``AlgorithmSpec``: how imported key material is wrapped in transit."""

    RSAES_PKCS1_V1_5 = "RSAES_PKCS1_V1_5"
    RSAES_OAEP_SHA_1 = "RSAES_OAEP_SHA_1"
    RSAES_OAEP_SHA_256 = "RSAES_OAEP_SHA_256"
    RSA_AES_KEY_WRAP_SHA_1 = "RSA_AES_KEY_WRAP_SHA_1"
    RSA_AES_KEY_WRAP_SHA_256 = "RSA_AES_KEY_WRAP_SHA_256"
    SM2PKE = "SM2PKE"


class WrappingKeySpec(StrEnum):
    RSA_2048 = "RSA_2048"
    RSA_3072 = "RSA_3072"
    RSA_4096 = "RSA_4096"
    SM2 = "SM2"


class CustomKeyStoreType(StrEnum):
    AWS_CLOUDHSM = "AWS_CLOUDHSM"
    EXTERNAL_KEY_STORE = "EXTERNAL_KEY_STORE"


class ConnectionState(StrEnum):
    """A custom key store's ``ConnectionState``."""

    CONNECTED = "CONNECTED"
    CONNECTING = "CONNECTING"
    FAILED = "FAILED"
    DISCONNECTED = "DISCONNECTED"
    DISCONNECTING = "DISCONNECTING"


class ConnectionErrorCode(StrEnum):
    """Why a connection FAILED (``ConnectionErrorCodeType``)."""

    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    CLUSTER_NOT_FOUND = "CLUSTER_NOT_FOUND"
    NETWORK_ERRORS = "NETWORK_ERRORS"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    INSUFFICIENT_CLOUDHSM_HSMS = "INSUFFICIENT_CLOUDHSM_HSMS"
    USER_LOCKED_OUT = "USER_LOCKED_OUT"
    USER_NOT_FOUND = "USER_NOT_FOUND"
    USER_LOGGED_IN = "USER_LOGGED_IN"
    SUBNET_NOT_FOUND = "SUBNET_NOT_FOUND"
    INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET = "INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET"
    # External key stores
    XKS_PROXY_ACCESS_DENIED = "XKS_PROXY_ACCESS_DENIED"
    XKS_PROXY_NOT_REACHABLE = "XKS_PROXY_NOT_REACHABLE"
    XKS_VPC_ENDPOINT_SERVICE_NOT_FOUND = "XKS_VPC_ENDPOINT_SERVICE_NOT_FOUND"
    XKS_PROXY_INVALID_RESPONSE = "XKS_PROXY_INVALID_RESPONSE"
    XKS_PROXY_INVALID_CONFIGURATION = "XKS_PROXY_INVALID_CONFIGURATION"
    XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION = (
        "XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION"
    )
    XKS_PROXY_TIMED_OUT = "XKS_PROXY_TIMED_OUT"
    XKS_PROXY_INVALID_TLS_CONFIGURATION = "XKS_PROXY_INVALID_TLS_CONFIGURATION"


class XksProxyConnectivity(StrEnum):
    """How the KMS reaches an external key store's proxy (``XksProxyConnectivityType``)."""

    PUBLIC_ENDPOINT = "PUBLIC_ENDPOINT"
    VPC_ENDPOINT_SERVICE = "VPC_ENDPOINT_SERVICE"
