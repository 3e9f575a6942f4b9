"""The AWS exception a KMS operation returns for each way an XKS proxy call fails.

One table per kind of KMS operation, after the XKS Proxy API spec's "KMS Considerations"
under "Error codes": the exception depends on the operation (CreateCustomKeyStore and
UpdateCustomKeyStore, ConnectCustomKeyStore, CreateKey, the cryptographic operations), the
message only on the failure. The proxy's own errorMessage never reaches the caller (it is
in XksError.detail, for the log).
"""

from __future__ import annotations

from strongroom.domain.enums import ConnectionErrorCode
from strongroom.domain.errors import (
    CustomKeyStoreInvalidStateException,
    DependencyTimeoutException,
    KmsError,
    KMSInvalidStateException,
    XksKeyInvalidConfigurationException,
    XksKeyNotFoundException,
    XksProxyIncorrectAuthenticationCredentialException,
    XksProxyInvalidConfigurationException,
    XksProxyInvalidResponseException,
    XksProxyUriUnreachableException,
)
from strongroom.keystores.xks_client import Failure, Health, XksError

__all__ = [
    "INVALID_CIPHERTEXT_FROM_PROXY_MESSAGE",
    "MESSAGES",
    "NOT_CONNECTED_MESSAGE",
    "UNAVAILABLE_MESSAGE",
    "connection_error_code",
    "connection_error_code_for_health",
    "for_create_key",
    "for_crypto",
    "for_store_check",
    "health_failure",
    "invalid_ciphertext_from_proxy",
]

_INVALID_RESPONSE = (
    "AWS KMS could not make sense of the external key store proxy's response. If this keeps "
    "happening, tell the administrator of your external key store proxy."
)
_UNREACHABLE = (
    "AWS KMS could not reach the external key store proxy. The network problem may be "
    "temporary. If it persists, check that the proxy is running and on the network, and that "
    "the endpoint URI of your external key store is right."
)

MESSAGES: dict[Failure, str] = {
    Failure.VALIDATION: _INVALID_RESPONSE,
    Failure.MALFORMED: _INVALID_RESPONSE,
    Failure.INVALID_STATE: (
        "The external key of this KMS key is not enabled in its external key manager. Enable "
        "it there and try the request again."
    ),
    Failure.INVALID_CIPHERTEXT: (
        "The external key store proxy refused the request: the ciphertext or the encryption "
        "context is corrupted, missing or otherwise invalid."
    ),
    Failure.INVALID_KEY_USAGE: (
        "The external key of this KMS key does not allow the requested operation. Allow the "
        "operation on that key in your external key manager and try the request again."
    ),
    Failure.AUTHENTICATION_FAILED: (
        "The external key store proxy refused the request because it could not authenticate "
        "AWS KMS. Check the proxy authentication credential of your external key store and "
        "update it if needed."
    ),
    Failure.ACCESS_DENIED: (
        "The external key store proxy denied access to the operation. Check that both the "
        "caller and the external key are allowed this operation, then try the request again."
    ),
    Failure.KEY_NOT_FOUND: (
        "The external key of this KMS key was not found in its external key manager. If the "
        "external key ID of this KMS key is wrong, create a new KMS key with the right one."
    ),
    Failure.INVALID_URI_PATH: (
        "The external key store proxy refused the request because its URI path is not valid. "
        "Check the proxy URI path of your external key store and update it if needed."
    ),
    Failure.UNSUPPORTED_OPERATION: (
        "The external key store proxy refused the request because it does not support the "
        "requested operation. If this keeps happening, tell the administrator of your "
        "external key store proxy."
    ),
    Failure.DEPENDENCY_TIMEOUT: (
        "The external key store proxy did not complete the request in the time allowed. Try "
        "the request again. If this keeps happening, tell the administrator of your external "
        "key store proxy."
    ),
    Failure.THROTTLING: (
        "The external key store proxy refused the request because requests are coming too "
        "fast. Make fewer calls with the KMS keys of this external key store."
    ),
    Failure.INTERNAL: (
        "The external key store proxy refused the request because it cannot reach its "
        "external key manager. Check that the proxy is configured correctly and that the "
        "external key manager is available."
    ),
    Failure.UNREACHABLE: _UNREACHABLE,
    Failure.TLS: (
        "AWS KMS could not set up a TLS connection with the external key store proxy. Check "
        "its TLS configuration, including its certificate."
    ),
    Failure.TIMED_OUT: (
        "AWS KMS gave up on the request because the external key store proxy did not answer "
        "in time. Try the request again. If this keeps happening, tell the administrator of "
        "your external key store proxy."
    ),
}

UNAVAILABLE_MESSAGE = (
    "The external key store proxy reports that none of its external key managers is "
    "available. Check that the external key manager is running and reachable from the proxy."
)
NOT_CONNECTED_MESSAGE = (
    "This KMS key is in a custom key store that is not connected to its external key store "
    "proxy. Connect the external key store and try the request again."
)
INVALID_CIPHERTEXT_FROM_PROXY_MESSAGE = (
    "The ciphertext that the external key store proxy returned for decryption, or the "
    "encryption context, is corrupted, missing or otherwise invalid."
)

# CreateCustomKeyStore / UpdateCustomKeyStore (their GetHealthStatus call). The spec's table
# has no entry for the failures GetHealthStatus cannot return by the spec (a key's state,
# usage, ciphertext, absence or access): a proxy that answers one answers wrongly.
_STORE_CHECK: dict[Failure, type[KmsError]] = {
    Failure.AUTHENTICATION_FAILED: XksProxyIncorrectAuthenticationCredentialException,
    Failure.INVALID_URI_PATH: XksProxyInvalidConfigurationException,
    Failure.UNREACHABLE: XksProxyUriUnreachableException,
    Failure.TLS: XksProxyUriUnreachableException,
    Failure.TIMED_OUT: XksProxyUriUnreachableException,
    Failure.THROTTLING: XksProxyUriUnreachableException,
    Failure.DEPENDENCY_TIMEOUT: XksProxyUriUnreachableException,
    # the store (not a key) is disabled at the proxy: as unavailable as all-UNAVAILABLE
    Failure.INVALID_STATE: XksProxyUriUnreachableException,
}

# CreateKey (its GetKeyMetadata call). The spec names "XksKeyInvalidResponseException" for
# UnsupportedOperationException, which no KMS API has; CreateKey's own exception for a key
# the proxy cannot use is XksKeyInvalidConfigurationException.
_CREATE_KEY: dict[Failure, type[KmsError]] = {
    Failure.INVALID_STATE: XksKeyInvalidConfigurationException,
    Failure.INVALID_KEY_USAGE: XksKeyInvalidConfigurationException,
    Failure.UNSUPPORTED_OPERATION: XksKeyInvalidConfigurationException,
    Failure.KEY_NOT_FOUND: XksKeyNotFoundException,
    Failure.ACCESS_DENIED: KMSInvalidStateException,
}

_CONNECTION_ERROR_CODES: dict[Failure, ConnectionErrorCode] = {
    Failure.AUTHENTICATION_FAILED: ConnectionErrorCode.INVALID_CREDENTIALS,
    Failure.ACCESS_DENIED: ConnectionErrorCode.XKS_PROXY_ACCESS_DENIED,
    Failure.INVALID_URI_PATH: ConnectionErrorCode.XKS_PROXY_INVALID_CONFIGURATION,
    Failure.UNREACHABLE: ConnectionErrorCode.XKS_PROXY_NOT_REACHABLE,
    Failure.THROTTLING: ConnectionErrorCode.XKS_PROXY_NOT_REACHABLE,
    Failure.DEPENDENCY_TIMEOUT: ConnectionErrorCode.XKS_PROXY_NOT_REACHABLE,
    Failure.INVALID_STATE: ConnectionErrorCode.XKS_PROXY_NOT_REACHABLE,
    Failure.TIMED_OUT: ConnectionErrorCode.XKS_PROXY_TIMED_OUT,
    Failure.TLS: ConnectionErrorCode.XKS_PROXY_INVALID_TLS_CONFIGURATION,
}


def for_store_check(e: XksError) -> KmsError:
    """CreateCustomKeyStore and UpdateCustomKeyStore: XksProxyIncorrectAuthentication-
    CredentialException, XksProxyInvalidConfigurationException (URI path),
    XksProxyUriUnreachableException (network, TLS, timeout, throttling, the proxy's
    dependency) or XksProxyInvalidResponseException (anything else)."""
    return _STORE_CHECK.get(e.failure, XksProxyInvalidResponseException)(MESSAGES[e.failure])


def health_failure(health: Health) -> KmsError | None:
    """XksProxyUriUnreachableException when every external key manager is UNAVAILABLE
    (Create/UpdateCustomKeyStore cannot use such a proxy), None otherwise."""
    if health.all_unavailable:
        return XksProxyUriUnreachableException(UNAVAILABLE_MESSAGE)
    return None


def connection_error_code(e: XksError) -> ConnectionErrorCode:
    """ConnectCustomKeyStore: the ConnectionErrorCode of a FAILED connection."""
    return _CONNECTION_ERROR_CODES.get(e.failure, ConnectionErrorCode.XKS_PROXY_INVALID_RESPONSE)


def connection_error_code_for_health(health: Health) -> ConnectionErrorCode | None:
    """ConnectCustomKeyStore: XKS_PROXY_NOT_REACHABLE when every external key manager is
    UNAVAILABLE, None when the proxy can serve."""
    return ConnectionErrorCode.XKS_PROXY_NOT_REACHABLE if health.all_unavailable else None


def for_create_key(e: XksError) -> KmsError:
    """CreateKey: XksKeyNotFoundException, XksKeyInvalidConfigurationException (the key is
    disabled or cannot do the operation), KMSInvalidStateException (access denied by the
    proxy), and CustomKeyStoreInvalidStateException for every other failure."""
    return _CREATE_KEY.get(e.failure, CustomKeyStoreInvalidStateException)(MESSAGES[e.failure])


def for_crypto(e: XksError, key_arn: str) -> KmsError:
    """Encrypt, Decrypt, ReEncrypt and GenerateDataKey*: KMSInvalidStateException with the
    failure's message; DependencyTimeoutException when the proxy did not answer within the
    client's timeout (the operation may succeed when retried). ``key_arn`` is the KMS key's
    ARN, which the message of a timeout names."""
    if e.failure is Failure.TIMED_OUT:
        return DependencyTimeoutException(
            f"The external key store proxy of KMS key {key_arn} did not answer in time. Try "
            "the request again. If this keeps happening, tell the administrator of your "
            "external key store proxy."
        )
    return KMSInvalidStateException(MESSAGES[e.failure])


def invalid_ciphertext_from_proxy() -> KmsError:
    """Decrypt and ReEncrypt: KMSInvalidStateException when what the proxy decrypted is not
    the ciphertext the KMS key's own material can open."""
    return KMSInvalidStateException(INVALID_CIPHERTEXT_FROM_PROXY_MESSAGE)
