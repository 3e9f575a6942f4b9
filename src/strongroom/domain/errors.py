"""The one error tree: every failure the API returns is a ``KmsError`` named like its AWS code.

Internal failures (storage, key stores) are a separate family (``InternalError``) that
never reaches the wire as text: the protocol layer turns them into
``KMSInternalException`` carrying only the request id.
"""

from __future__ import annotations


class KmsError(Exception):
    """An error the API returns to the caller: ``code`` is the AWS error code."""

    status: int = 400
    # Made by fault injection (``strongroom admin fault``), not by the operation: the audit
    # event says so.
    injected: bool = False

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    @property
    def code(self) -> str:
        return type(self).__name__


# Errors of the KMS service model (botocore kms/2014-11-01), plus the common AWS errors
# that the JSON protocol returns before an operation runs.


class AccessDeniedException(KmsError):
    """AWS error code AccessDeniedException."""


class AlreadyExistsException(KmsError):
    """AWS error code AlreadyExistsException."""


class CloudHsmClusterInUseException(KmsError):
    """AWS error code CloudHsmClusterInUseException."""


class CloudHsmClusterInvalidConfigurationException(KmsError):
    """AWS error code CloudHsmClusterInvalidConfigurationException."""


class CloudHsmClusterNotActiveException(KmsError):
    """AWS error code CloudHsmClusterNotActiveException."""


class CloudHsmClusterNotFoundException(KmsError):
    """AWS error code CloudHsmClusterNotFoundException."""


class CloudHsmClusterNotRelatedException(KmsError):
    """AWS error code CloudHsmClusterNotRelatedException."""


class ConflictException(KmsError):
    """AWS error code ConflictException."""


class CustomKeyStoreHasCMKsException(KmsError):
    """AWS error code CustomKeyStoreHasCMKsException."""


class CustomKeyStoreInvalidStateException(KmsError):
    """AWS error code CustomKeyStoreInvalidStateException."""


class CustomKeyStoreNameInUseException(KmsError):
    """AWS error code CustomKeyStoreNameInUseException."""


class CustomKeyStoreNotFoundException(KmsError):
    """AWS error code CustomKeyStoreNotFoundException."""


class DependencyTimeoutException(KmsError):
    """AWS error code DependencyTimeoutException."""

    status = 503


class DisabledException(KmsError):
    """AWS error code DisabledException."""


class DryRunOperationException(KmsError):
    """AWS error code DryRunOperationException. HTTP 400 as real AWS answers it (recorded
    for GenerateDataKeyPair with and without plaintext), though the API reference says 412."""


class ExpiredImportTokenException(KmsError):
    """AWS error code ExpiredImportTokenException."""


class ExpiredTokenException(KmsError):
    """AWS error code ExpiredTokenException: the session token of temporary credentials
    has expired (what the AWS JSON services answer; STS's query protocol says ExpiredToken)."""


class IncompleteSignatureException(KmsError):
    """AWS error code IncompleteSignatureException."""


class IncorrectKeyException(KmsError):
    """AWS error code IncorrectKeyException."""


class IncorrectKeyMaterialException(KmsError):
    """AWS error code IncorrectKeyMaterialException."""


class IncorrectTrustAnchorException(KmsError):
    """AWS error code IncorrectTrustAnchorException."""


class InvalidAliasNameException(KmsError):
    """AWS error code InvalidAliasNameException."""


class InvalidArnException(KmsError):
    """AWS error code InvalidArnException."""


class InvalidCiphertextException(KmsError):
    """AWS error code InvalidCiphertextException."""


class InvalidGrantIdException(KmsError):
    """AWS error code InvalidGrantIdException."""


class InvalidGrantTokenException(KmsError):
    """AWS error code InvalidGrantTokenException."""


class InvalidImportTokenException(KmsError):
    """AWS error code InvalidImportTokenException."""


class InvalidKeyUsageException(KmsError):
    """AWS error code InvalidKeyUsageException."""


class InvalidMarkerException(KmsError):
    """AWS error code InvalidMarkerException."""


class InvalidSignatureException(KmsError):
    """AWS error code InvalidSignatureException."""


class KMSInternalException(KmsError):
    """AWS error code KMSInternalException."""

    status = 500


class KMSInvalidMacException(KmsError):
    """AWS error code KMSInvalidMacException."""


class KMSInvalidSignatureException(KmsError):
    """AWS error code KMSInvalidSignatureException."""


class KMSInvalidStateException(KmsError):
    """AWS error code KMSInvalidStateException."""


class KeyUnavailableException(KmsError):
    """AWS error code KeyUnavailableException."""

    status = 500


class LimitExceededException(KmsError):
    """AWS error code LimitExceededException."""


class MalformedPolicyDocumentException(KmsError):
    """AWS error code MalformedPolicyDocumentException."""


class MissingAuthenticationTokenException(KmsError):
    """AWS error code MissingAuthenticationTokenException."""

    status = 403


class NotFoundException(KmsError):
    """AWS error code NotFoundException."""


class SerializationException(KmsError):
    """AWS error code SerializationException."""


class TagException(KmsError):
    """AWS error code TagException."""


class ThrottlingException(KmsError):
    """AWS error code ThrottlingException."""


class UnknownOperationException(KmsError):
    """AWS error code UnknownOperationException."""


class UnrecognizedClientException(KmsError):
    """AWS error code UnrecognizedClientException."""


class UnsupportedOperationException(KmsError):
    """AWS error code UnsupportedOperationException."""


class ValidationException(KmsError):
    """AWS error code ValidationException."""


class XksKeyAlreadyInUseException(KmsError):
    """AWS error code XksKeyAlreadyInUseException."""


class XksKeyInvalidConfigurationException(KmsError):
    """AWS error code XksKeyInvalidConfigurationException."""


class XksKeyNotFoundException(KmsError):
    """AWS error code XksKeyNotFoundException."""


class XksProxyIncorrectAuthenticationCredentialException(KmsError):
    """AWS error code XksProxyIncorrectAuthenticationCredentialException."""


class XksProxyInvalidConfigurationException(KmsError):
    """AWS error code XksProxyInvalidConfigurationException."""


class XksProxyInvalidResponseException(KmsError):
    """AWS error code XksProxyInvalidResponseException."""


class XksProxyUriEndpointInUseException(KmsError):
    """AWS error code XksProxyUriEndpointInUseException."""


class XksProxyUriInUseException(KmsError):
    """AWS error code XksProxyUriInUseException."""


class XksProxyUriUnreachableException(KmsError):
    """AWS error code XksProxyUriUnreachableException."""


class XksProxyVpcEndpointServiceInUseException(KmsError):
    """AWS error code XksProxyVpcEndpointServiceInUseException."""


class XksProxyVpcEndpointServiceInvalidConfigurationException(KmsError):
    """AWS error code XksProxyVpcEndpointServiceInvalidConfigurationException."""


class XksProxyVpcEndpointServiceNotFoundException(KmsError):
    """AWS error code XksProxyVpcEndpointServiceNotFoundException."""


class InternalError(Exception):
    """A failure inside Strongroom; its text goes to the log, never to the caller."""


class StorageError(InternalError):
    """The database failed or returned something impossible."""


class KeyStoreError(InternalError):
    """A key store (root key, HSM, XKS proxy) failed."""


# Not in the KMS model, but what AWS returns for names reserved to it.


class NotAuthorizedException(KmsError):
    """AWS error code NotAuthorizedException."""
