"""Parameter Store parameters (AWS Systems Manager): types, one stored version of a
parameter, and the naming rules, as the SSM API reference and the Parameter Store user
guide ("Creating Parameter Store parameters", "Parameter naming constraints") give them.
Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from strongroom.domain.errors import ValidationException
from strongroom.domain.ssm_errors import HierarchyLevelLimitExceededException

MAX_VERSIONS = 100
"""Parameter Store keeps the newest 100 versions of a parameter ("Working with parameter
versions"); putting a 101st drops the oldest."""

MAX_HIERARCHY_DEPTH = 15
"""A hierarchy has at most 15 levels ("Working with parameter hierarchies")."""

MAX_NAME_LENGTH = 1011
"""The longest name a parameter can be created with, counted with the part of its ARN
before it (``arn:aws:ssm:us-east-2:111122223333:parameter/``): PutParameter's Name, "The
maximum length for a parameter name that you create is 1011 characters. This includes the
characters in the ARN that precede the name you specify" (the model's 2048 includes 1037
characters SSM reserves)."""

STANDARD_VALUE_LIMIT = 4096
"""Standard-tier values hold at most 4 KB ("Managing parameter tiers")."""

MANAGED_KEY_ALIAS = "alias/aws/ssm"
"""The AWS managed key of SecureString parameters when PutParameter names no KeyId."""

ENCRYPTION_CONTEXT_KEY = "PARAMETER_ARN"
"""Standard-tier SecureString values are encrypted by KMS Encrypt with the parameter's ARN
as encryption context under this key ("How AWS Systems Manager Parameter Store uses AWS
KMS")."""

HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"

_NAME_CHARS = re.compile(r"[a-zA-Z0-9_.\-/]+")
_RESERVED_PREFIXES = ("aws", "ssm")


class ParameterType(StrEnum):
    STRING = "String"
    STRING_LIST = "StringList"
    SECURE_STRING = "SecureString"


class ParameterTier(StrEnum):
    STANDARD = "Standard"
    ADVANCED = "Advanced"
    INTELLIGENT_TIERING = "Intelligent-Tiering"


DATA_TYPE_TEXT = "text"


@dataclass(frozen=True, slots=True)
class ParameterVersion:
    """One version of a parameter as stored. ``value`` is the text of a String or
    StringList; a SecureString holds only ``ciphertext`` (the KMS ciphertext blob) and the
    ``key_id`` it was put with, as given (``alias/aws/ssm`` when none was)."""

    account: str
    region: str
    name: str
    version: int
    type: ParameterType
    value: str | None
    ciphertext: bytes | None
    key_id: str | None
    description: str
    allowed_pattern: str
    tier: ParameterTier
    data_type: str
    modified: datetime
    modified_user: str

    @property
    def arn(self) -> str:
        return parameter_arn(self.region, self.account, self.name)


def arn_prefix(region: str, account: str) -> str:
    """``arn:aws:ssm:<region>:<account>:parameter/``: what a parameter's ARN has before its
    name (less the name's leading ``/``)."""
    return f"arn:aws:ssm:{region}:{account}:parameter/"


def parameter_arn(region: str, account: str, name: str) -> str:
    """``arn:aws:ssm:<region>:<account>:parameter/<name>``; a name's leading ``/`` is the
    ARN's separator, never doubled."""
    return f"arn:aws:ssm:{region}:{account}:parameter/{name.lstrip('/')}"


def name_from_arn(value: str, region: str, account: str) -> str | None:
    """The parameter name an ARN of this Region and account names (``/`` prefixed when the
    name is hierarchical, which an ARN cannot tell: both forms are tried by the caller);
    None when ``value`` is not a parameter ARN of theirs."""
    prefix = f"arn:aws:ssm:{region}:{account}:parameter/"
    if not value.startswith(prefix):
        return None
    return value[len(prefix) :]


def check_name(name: str, arn_prefix: str = "") -> None:
    """Raise ValidationException or HierarchyLevelLimitExceededException unless ``name`` is
    a name PutParameter accepts: letters, digits and ``_.-/``, at most 1011 characters with
    ``arn_prefix`` (the ARN's ``arn:aws:ssm:<region>:<account>:parameter/``) before it, not
    beginning with ``aws`` or ``ssm`` (any case, with or without a leading ``/``), a
    hierarchy beginning with ``/`` and at most 15 levels deep, no empty level."""
    bare = name.lstrip("/")
    for reserved in _RESERVED_PREFIXES:
        if bare.lower().startswith(reserved):
            raise ValidationException(
                f'Parameter name: can\'t be prefixed with "{reserved}" (case-insensitive). If '
                "formed as a path, it can consist of sub-paths divided by slash symbol; each "
                "sub-path can be formed as a mix of letters, numbers and the following 3 "
                "symbols .-_"
            )
    if len(arn_prefix) + len(bare) > MAX_NAME_LENGTH:
        raise ValidationException(
            f"Parameter name: {name} is too long: a parameter name, with the "
            f"{len(arn_prefix)} characters of its ARN before it ({arn_prefix}), can have at "
            f"most {MAX_NAME_LENGTH} characters."
        )
    if not _NAME_CHARS.fullmatch(name):
        raise ValidationException(
            "Parameter name must only contain letters, numbers, and the following symbols: _.-/"
        )
    if "/" in name:
        if not name.startswith("/"):
            raise ValidationException(
                "Parameter name must be a fully qualified name (it must begin with a '/')."
            )
        if "//" in name or name.endswith("/"):
            raise ValidationException(
                "Parameter name: a hierarchy level must not be empty ('//' or a trailing '/')."
            )
        if name.count("/") > MAX_HIERARCHY_DEPTH:
            raise HierarchyLevelLimitExceededException(
                "Parameter name: hierarchy levels must be 15 or fewer "
                f"({name.count('/')} levels in {name})."
            )


def check_path(path: str) -> None:
    """Raise ValidationException unless ``path`` is a hierarchy path (GetParametersByPath,
    DescribeParameters' Path filter): ``/`` or ``/a/b``, optionally with a trailing ``/``."""
    if not path.startswith("/") or not _NAME_CHARS.fullmatch(path) or "//" in path:
        raise ValidationException(
            "The parameter doesn't meet the parameter name requirements. The parameter name "
            'must begin with a forward slash "/". It can\'t be prefixed with "aws" or '
            '"ssm" (case-insensitive). It must use only letters, numbers, or the following '
            "symbols: . (period), - (hyphen), _ (underscore). Special characters are not "
            f'allowed. All sub-paths, if specified, must use the forward slash symbol "/". '
            f"Valid example: /get/parameters2-/by1./path0_. (path: {path})"
        )


def under_path(name: str, path: str, *, recursive: bool) -> bool:
    """Whether ``name`` lies below ``path``: anywhere below when ``recursive``, else one level
    down (``/a/b`` is one level below ``/a``, ``/a/b/c`` is not)."""
    prefix = path if path.endswith("/") else path + "/"
    if not name.startswith(prefix) or name == prefix:
        return False
    return recursive or "/" not in name[len(prefix) :]
