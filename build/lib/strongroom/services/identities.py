"""Accounts, principals and access keys: the identities requests are signed with."""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass, field

from strongroom.authz.policy import PolicyKind, parse_policy
from strongroom.crypto.context import encode_context
from strongroom.domain.errors import (
    AlreadyExistsException,
    NotFoundException,
    UnrecognizedClientException,
    ValidationException,
)
from strongroom.domain.ids import ACCOUNT_RE
from strongroom.domain.models import Principal
from strongroom.services.core import Core
from strongroom.storage.ports import AccessKeyRecord

_AKID_ALPHABET = string.ascii_uppercase + "234567"
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
_NAME_RE = re.compile(r"^[A-Za-z0-9+=,.@_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class NewAccessKey:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    principal: Principal


def _secret_aad(access_key_id: str) -> bytes:
    return encode_context({"accessKeyId": access_key_id})


def ensure_account(core: Core, account: str) -> bool:
    """Create an account and its root principal unless it exists; True when created."""
    if not ACCOUNT_RE.match(account):
        raise ValidationException(f"Account id '{account}' must be 12 digits.")
    with core.store.transaction() as tx:
        return tx.ensure_account(account, core.clock())


def create_principal(core: Core, account: str, kind: str, name: str) -> Principal:
    """Create a user or a role in an existing account."""
    if kind not in ("user", "role"):
        raise ValidationException(f"Principal kind '{kind}' must be user or role.")
    if not _NAME_RE.match(name):
        raise ValidationException(
            f"Name '{name}' must be 1-64 characters of letters, digits and +=,.@_-"
        )
    principal = Principal(f"arn:aws:iam::{account}:{kind}/{name}", account, kind, name)
    with core.store.transaction() as tx:
        if account not in tx.list_accounts():
            raise NotFoundException(f"Account {account} does not exist.")
        if tx.get_principal(principal.arn) is not None:
            raise AlreadyExistsException(f"{principal.arn} already exists.")
        tx.insert_principal(principal, core.clock())
    return principal


def create_access_key(core: Core, principal_arn: str) -> NewAccessKey:
    """A new access key for a principal; the secret is stored wrapped under the root key."""
    access_key_id = "AKIA" + "".join(secrets.choice(_AKID_ALPHABET) for _ in range(16))
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
    wrapped = core.root_key.wrap(secret.encode(), _secret_aad(access_key_id))
    with core.store.transaction() as tx:
        principal = tx.get_principal(principal_arn)
        if principal is None:
            raise NotFoundException(f"Principal {principal_arn} does not exist.")
        tx.insert_access_key(
            AccessKeyRecord(access_key_id, principal, wrapped, "Active"), core.clock()
        )
    return NewAccessKey(access_key_id, secret, principal)


@dataclass(frozen=True, slots=True)
class Credential:
    principal: Principal
    secret_access_key: str = field(repr=False)
    identity_policies: tuple[str, ...] = ()


class CredentialResolver:
    """Finds the secret and principal behind an access key id, caching what it unwraps."""

    def __init__(self, core: Core) -> None:
        self._core = core
        self._cache: dict[str, Credential] = {}

    def resolve(self, access_key_id: str) -> Credential | None:
        cached = self._cache.get(access_key_id)
        if cached is not None:
            return cached
        with self._core.store.transaction() as tx:
            record = tx.get_access_key(access_key_id)
            if record is None or record.status != "Active":
                return None
            policies = tuple(doc for _, doc in tx.get_identity_policies(record.principal.arn))
        secret = self._core.root_key.unwrap(record.wrapped_secret, _secret_aad(access_key_id))
        credential = Credential(record.principal, secret.decode(), policies)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[access_key_id] = credential
        return credential

    def forget(self, access_key_id: str) -> None:
        self._cache.pop(access_key_id, None)

    def forget_principal(self, principal_arn: str) -> None:
        """Drop the cached credentials of a principal (its policies changed)."""
        for access_key_id, credential in list(self._cache.items()):
            if credential.principal.arn == principal_arn:
                self._cache.pop(access_key_id, None)


# IAM: inline policy names are 1-128 characters of [\w+=,.@-].
_POLICY_NAME_RE = re.compile(r"^[\w+=,.@-]{1,128}$")


def _principal_arn(kind: str, account: str, name: str) -> str:
    if kind not in ("user", "role"):
        raise ValidationException(f"Principal kind '{kind}' must be user or role.")
    return f"arn:aws:iam::{account}:{kind}/{name}"


def put_identity_policy(
    core: Core, kind: str, account: str, name: str, policy_name: str, document: str
) -> str:
    """Attach (or replace) an inline IAM policy to a user or role; returns its ARN.

    Raises MalformedPolicyDocumentException / LimitExceededException for a bad document,
    ValidationException for a bad policy name, NotFoundException for an unknown principal.
    """
    arn = _principal_arn(kind, account, name)
    if not _POLICY_NAME_RE.match(policy_name):
        raise ValidationException(f"Policy name '{policy_name}' must be 1-128 of [\\w+=,.@-].")
    parse_policy(document, PolicyKind.IDENTITY)
    now = core.clock()
    with core.store.transaction() as tx:
        if tx.get_principal(arn) is None:
            raise NotFoundException(f"Principal {arn} does not exist.")
        tx.put_identity_policy(arn, policy_name, document, now)
        tx.record_change(arn, now)  # every process drops the cached credentials
    return arn


def list_identity_policies(core: Core, kind: str, account: str, name: str) -> list[str]:
    """The names of a user's or role's inline policies."""
    arn = _principal_arn(kind, account, name)
    with core.store.transaction() as tx:
        if tx.get_principal(arn) is None:
            raise NotFoundException(f"Principal {arn} does not exist.")
        return [n for n, _ in tx.get_identity_policies(arn)]


def delete_identity_policy(
    core: Core, kind: str, account: str, name: str, policy_name: str
) -> None:
    """Remove an inline policy; NotFoundException when the principal has none of that name."""
    arn = _principal_arn(kind, account, name)
    now = core.clock()
    with core.store.transaction() as tx:
        if not tx.delete_identity_policy(arn, policy_name):
            raise NotFoundException(f"{arn} has no policy named {policy_name}.")
        tx.record_change(arn, now)


def unknown_access_key() -> UnrecognizedClientException:
    return UnrecognizedClientException("The security token included in the request is invalid.")
