"""The errors of the AWS Systems Manager (SSM) API that Parameter Store returns, named
exactly as its error codes (botocore ``ssm`` service model). They join the one error tree
(``domain.errors.KmsError``): the SSM wire protocol sends ``code`` as ``__type``.
``AccessDeniedException`` and ``ValidationException`` are the common ones of
``domain.errors``."""

from __future__ import annotations

from strongroom.domain.errors import KmsError


class InternalServerError(KmsError):
    """AWS error code InternalServerError (what KMSInternalException is called on SSM)."""

    status = 500


class InvalidKeyId(KmsError):
    """AWS error code InvalidKeyId: the KMS key of a SecureString is unknown, disabled,
    pending deletion or cannot encrypt."""


class ParameterNotFound(KmsError):
    """AWS error code ParameterNotFound."""


class ParameterAlreadyExists(KmsError):
    """AWS error code ParameterAlreadyExists."""


class ParameterVersionNotFound(KmsError):
    """AWS error code ParameterVersionNotFound."""


class ParameterLimitExceeded(KmsError):
    """AWS error code ParameterLimitExceeded."""


class ParameterPatternMismatchException(KmsError):
    """AWS error code ParameterPatternMismatchException."""


class InvalidAllowedPatternException(KmsError):
    """AWS error code InvalidAllowedPatternException."""


class HierarchyLevelLimitExceededException(KmsError):
    """AWS error code HierarchyLevelLimitExceededException."""


class HierarchyTypeMismatchException(KmsError):
    """AWS error code HierarchyTypeMismatchException."""


class UnsupportedParameterType(KmsError):
    """AWS error code UnsupportedParameterType."""


class InvalidFilterKey(KmsError):
    """AWS error code InvalidFilterKey."""


class InvalidFilterOption(KmsError):
    """AWS error code InvalidFilterOption."""


class InvalidFilterValue(KmsError):
    """AWS error code InvalidFilterValue."""


class InvalidNextToken(KmsError):
    """AWS error code InvalidNextToken."""


class InvalidResourceId(KmsError):
    """AWS error code InvalidResourceId."""


class InvalidResourceType(KmsError):
    """AWS error code InvalidResourceType."""


class TooManyTagsError(KmsError):
    """AWS error code TooManyTagsError."""
