"""The one error tree: every failure the API returns is a ``KmsError`` named like its AWS code.

Internal failures (storage, key stores) are a separate family (``InternalError``) that
never reaches the wire as text: the protocol layer turns them into
``KMSInternalException`` carrying only the request id.
"""

from __future__ import annotations


class KmsError(Exception):
    """An error the API returns to the caller: ``code`` is the AWS error code."""

    status: int = 400

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    @property
    def code(self) -> str:
        return type(self).__name__


def _error(name: str, status: int = 400) -> type[KmsError]:
    return type(name, (KmsError,), {"status": status, "__module__": __name__})


# Errors of the KMS service model (botocore kms/2014-11-01), plus the common AWS errors
# that the JSON protocol returns before an operation runs.
AccessDeniedException = _error("AccessDeniedException")
AlreadyExistsException = _error("AlreadyExistsException")
CloudHsmClusterInvalidConfigurationException = _error(
    "CloudHsmClusterInvalidConfigurationException"
)
ConflictException = _error("ConflictException")
CustomKeyStoreHasCMKsException = _error("CustomKeyStoreHasCMKsException")
CustomKeyStoreInvalidStateException = _error("CustomKeyStoreInvalidStateException")
CustomKeyStoreNameInUseException = _error("CustomKeyStoreNameInUseException")
CustomKeyStoreNotFoundException = _error("CustomKeyStoreNotFoundException")
DependencyTimeoutException = _error("DependencyTimeoutException", 503)
DisabledException = _error("DisabledException")
DryRunOperationException = _error("DryRunOperationException", 412)
ExpiredImportTokenException = _error("ExpiredImportTokenException")
IncompleteSignatureException = _error("IncompleteSignatureException")
IncorrectKeyException = _error("IncorrectKeyException")
IncorrectKeyMaterialException = _error("IncorrectKeyMaterialException")
InvalidAliasNameException = _error("InvalidAliasNameException")
InvalidArnException = _error("InvalidArnException")
InvalidCiphertextException = _error("InvalidCiphertextException")
InvalidGrantIdException = _error("InvalidGrantIdException")
InvalidGrantTokenException = _error("InvalidGrantTokenException")
InvalidImportTokenException = _error("InvalidImportTokenException")
InvalidKeyUsageException = _error("InvalidKeyUsageException")
InvalidMarkerException = _error("InvalidMarkerException")
InvalidSignatureException = _error("InvalidSignatureException", 403)
KMSInternalException = _error("KMSInternalException", 500)
KMSInvalidMacException = _error("KMSInvalidMacException")
KMSInvalidSignatureException = _error("KMSInvalidSignatureException")
KMSInvalidStateException = _error("KMSInvalidStateException")
KeyUnavailableException = _error("KeyUnavailableException", 500)
LimitExceededException = _error("LimitExceededException")
MalformedPolicyDocumentException = _error("MalformedPolicyDocumentException")
MissingAuthenticationTokenException = _error("MissingAuthenticationTokenException", 403)
NotFoundException = _error("NotFoundException")
SerializationException = _error("SerializationException")
TagException = _error("TagException")
ThrottlingException = _error("ThrottlingException")
UnknownOperationException = _error("UnknownOperationException")
UnrecognizedClientException = _error("UnrecognizedClientException")
UnsupportedOperationException = _error("UnsupportedOperationException")
ValidationException = _error("ValidationException")


class InternalError(Exception):
    """A failure inside Strongroom; its text goes to the log, never to the caller."""


class StorageError(InternalError):
    """The database failed or returned something impossible."""


class KeyStoreError(InternalError):
    """A key store (root key, HSM, XKS proxy) failed."""

# Not in the KMS model, but what AWS returns for names reserved to it.
NotAuthorizedException = _error("NotAuthorizedException")
