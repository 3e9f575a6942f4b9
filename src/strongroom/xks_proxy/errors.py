"""The XKS Proxy API's errors: each is answered as ``{"errorName", "errorMessage"}`` with the
HTTP status the spec gives that name."""

from __future__ import annotations


class XksError(Exception):
    """An error answered to the caller; subclasses are named as the spec's ``errorName``."""

    status: int = 500

    @property
    def name(self) -> str:
        return type(self).__name__

    def body(self) -> dict[str, str]:
        return {"errorName": self.name, "errorMessage": str(self)}


class ValidationException(XksError):
    """One or more input parameters are invalid."""

    status = 400


class InvalidStateException(XksError):
    """The external key is disabled."""

    status = 400


class InvalidCiphertextException(XksError):
    """Ciphertext, IV, AAD or tag is corrupted, missing or otherwise invalid (decrypt)."""

    status = 400


class InvalidKeyUsageException(XksError):
    """The key does not support the requested operation."""

    status = 400


class AuthenticationFailedException(XksError):
    """The SigV4 signature is missing or invalid."""

    status = 401


class AccessDeniedException(XksError):
    """The operation is not authorized based on request metadata."""

    status = 403


class KeyNotFoundException(XksError):
    """No external key has this id."""

    status = 404


class InvalidUriPathException(XksError):
    """The URI path is not one this proxy serves."""

    status = 404


class ThrottlingException(XksError):
    """The request rate is too high."""

    status = 429


class UnsupportedOperationException(XksError):
    """The operation or a parameter's size is not supported by this implementation."""

    status = 501


class InternalException(XksError):
    """The key manager failed (its token is not available, say)."""

    status = 500


class DependencyTimeoutException(XksError):
    """The key manager did not answer in time."""

    status = 503
