"""The client's one exception tree: every failure of :mod:`strongroom.client` is a
:class:`ClientError`."""

from __future__ import annotations


class ClientError(Exception):
    """A message could not be encrypted or decrypted; ``str()`` says why in one line."""


class KmsCallError(ClientError):
    """KMS refused a call (after the configured retries): ``operation``, the AWS error
    ``code`` and its ``message``."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        self.operation = operation
        self.code = code
        self.message = message
        super().__init__(
            f"{operation} failed: {code}: {message}" if message else f"{operation} failed: {code}"
        )


class ContextMismatchError(ClientError):
    """The message's encryption context lacks a pair the caller required."""


class NoUsableKeyError(ClientError):
    """No encrypted data key of the message is under a KMS key the client may use."""


class MalformedMessageError(ClientError):
    """The input is not an AWS Encryption SDK message, or it was altered (opaque on purpose:
    a failed authentication tag says nothing of where)."""
