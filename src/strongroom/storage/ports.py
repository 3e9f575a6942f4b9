"""Storage records that are not domain objects, and the port the services use."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from strongroom.domain.enums import KeyState, WrappingAlgorithm, WrappingKeySpec
from strongroom.domain.models import Alias, Grant, Key, MaterialVersion, Principal, Tag


@dataclass(frozen=True, slots=True)
class AccessKeyRecord:
    access_key_id: str
    principal: Principal
    wrapped_secret: bytes = field(repr=False)
    status: str  # "Active" or "Inactive"


@dataclass(frozen=True, slots=True)
class ImportTokenRecord:
    """The parameters GetParametersForImport issued: the wrapping private key (wrapped under
    the root key) behind one import token, which only the token's digest names."""

    token_digest: str
    key_arn: str
    wrapping_algorithm: WrappingAlgorithm
    wrapping_key_spec: WrappingKeySpec
    wrapped_private_key: bytes = field(repr=False)
    valid_to: datetime
    created: datetime


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """Temporary credentials of a role session as stored: the secret wrapped under the
    root key, the session token only as its SHA-256."""

    access_key_id: str
    role: Principal
    session_name: str
    wrapped_secret: bytes = field(repr=False)
    token_sha256: bytes = field(repr=False)
    created: datetime
    expiration: datetime


class Transaction(Protocol):
    """One database transaction: it commits when its block ends and rolls back on error.
    Failures of the database raise StorageError."""

    def get_key(self, arn: str, *, for_update: bool = False) -> Key | None: ...

    def insert_key(self, key: Key) -> None: ...

    def update_key(self, key: Key) -> None: ...

    def delete_key(self, key: Key) -> list[str]:
        """Delete a key with its material (and what is known of it), import tokens, tags,
        grants and aliases; returns the deleted aliases' ARNs."""
        ...

    def list_keys(
        self, account: str, region: str, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[Key]:
        """Keys of an account and region in (creation date, ARN) order, after ``after``."""
        ...

    def related_keys(self, account: str, key_id: str, *, for_update: bool = False) -> list[Key]:
        """Every key of an account with this key id, in every Region, by Region: a
        multi-Region key's primary and replicas."""
        ...

    def keys_due_for_deletion(self, now: datetime) -> list[Key]: ...

    def insert_material(
        self, key_arn: str, version: int, wrapped: bytes, now: datetime
    ) -> None: ...

    def get_material(self, key_arn: str, version: int) -> bytes | None: ...

    def delete_material(self, key_arn: str, version: int) -> None:
        """Delete the wrapped material of a version (cryptographic erasure of imported
        material); its ``MaterialVersion`` stays unless deleted as well."""
        ...

    def insert_material_version(self, info: MaterialVersion) -> None: ...

    def update_material_version(self, info: MaterialVersion) -> None: ...

    def delete_material_version(self, key_arn: str, version: int) -> None: ...

    def list_material_versions(self, key_arn: str) -> list[MaterialVersion]:
        """Every material version of a key, in version order."""
        ...

    def keys_due_for_rotation(self, now: datetime) -> list[Key]:
        """Enabled keys with automatic rotation on whose next rotation date has come."""
        ...

    def materials_due_to_expire(self, now: datetime) -> list[MaterialVersion]:
        """Imported material versions still imported whose ValidTo has come."""
        ...

    def insert_import_token(self, record: ImportTokenRecord) -> None: ...

    def get_import_token(self, token_digest: str) -> ImportTokenRecord | None: ...

    def prune_import_tokens(self, before: datetime) -> None:
        """Delete the parameters of import tokens that expired before ``before``."""
        ...

    def get_alias(self, account: str, region: str, name: str) -> Alias | None: ...

    def insert_alias(self, alias: Alias) -> None: ...

    def update_alias(self, alias: Alias) -> None: ...

    def delete_alias(self, alias: Alias) -> None: ...

    def list_aliases(
        self, account: str, region: str, *, key_id: str | None, after: str | None, limit: int
    ) -> list[Alias]: ...

    def count_aliases(self, account: str, region: str, key_id: str) -> int: ...

    def get_tags(self, key_arn: str) -> list[Tag]: ...

    def put_tags(self, key_arn: str, new: Iterable[Tag]) -> None: ...

    def delete_tags(self, key_arn: str, tag_keys: Sequence[str]) -> None: ...

    def insert_grant(self, grant: Grant) -> None: ...

    def get_grant(self, grant_id: str) -> Grant | None: ...

    def delete_grant(self, grant_id: str) -> bool:
        """Delete one grant; False when there was none of that id."""
        ...

    def list_grants(
        self,
        key_arn: str,
        *,
        grant_id: str | None = None,
        grantee_principal: str | None = None,
        name: str | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int | None = None,
    ) -> list[Grant]:
        """A key's grants in (creation date, grant id) order after ``after``, those of one
        grant id, grantee or name when given."""
        ...

    def list_retirable_grants(
        self,
        retiring_principal: str,
        region: str,
        *,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Grant]:
        """Grants on keys of ``region`` (any account) naming ``retiring_principal``, in
        (creation date, grant id) order after ``after``."""
        ...

    def count_grants(self, key_arn: str, grantee_principal: str | None = None) -> int:
        """How many grants a key has (for one grantee when given)."""
        ...

    def record_change(self, key_arn: str, now: datetime) -> None: ...

    def prune_changes(self, before: datetime) -> None:
        """Forget changes older than every process's poll could still need."""
        ...

    def ensure_account(self, account: str, now: datetime) -> bool:
        """Create the account (and its root principal) unless it exists; True if created."""
        ...

    def list_accounts(self) -> list[str]: ...

    def insert_principal(self, principal: Principal, now: datetime) -> None: ...

    def get_principal(self, arn: str) -> Principal | None: ...

    def list_principals(self, account: str | None) -> list[Principal]: ...

    def insert_access_key(self, record: AccessKeyRecord, now: datetime) -> None: ...

    def get_access_key(self, access_key_id: str) -> AccessKeyRecord | None: ...

    def list_access_keys(self, principal_arn: str | None) -> list[AccessKeyRecord]: ...

    def delete_access_key(self, access_key_id: str) -> bool: ...

    def put_identity_policy(
        self, principal_arn: str, policy_name: str, document: str, now: datetime
    ) -> None:
        """Create or replace one inline (identity) policy of a user or role."""
        ...

    def get_identity_policies(self, principal_arn: str) -> list[tuple[str, str]]:
        """A principal's inline policies as (name, document), ordered by name."""
        ...

    def delete_identity_policy(self, principal_arn: str, policy_name: str) -> bool:
        """Delete one inline policy; False when there was none of that name."""
        ...

    def get_principal_tags(self, principal_arn: str) -> list[Tag]:
        """A user's or role's IAM tags, ordered by key."""
        ...

    def set_principal_tags(self, principal_arn: str, tags: Sequence[Tag]) -> None:
        """Replace every IAM tag of a user or role with ``tags``."""
        ...

    def get_trust_policy(self, role_arn: str) -> str | None:
        """A role's trust policy document; None when it has the default one."""
        ...

    def put_trust_policy(self, role_arn: str, document: str, now: datetime) -> None: ...

    def get_max_session_duration(self, role_arn: str) -> int | None:
        """A role's MaxSessionDuration in seconds; None when it has the default one."""
        ...

    def set_max_session_duration(self, role_arn: str, seconds: int) -> None: ...

    def insert_session(self, record: SessionRecord) -> None: ...

    def get_session(self, access_key_id: str) -> SessionRecord | None: ...

    def delete_sessions_expired_before(self, moment: datetime) -> int:
        """Forget temporary credentials that expired before ``moment``; how many."""
        ...


class Store(Protocol):
    """The database."""

    def transaction(self) -> AbstractContextManager[Transaction]:
        """A transaction that commits when the block ends and rolls back on any error."""
        ...

    def migrate(self) -> None:
        """Bring the schema to the newest revision."""
        ...

    def latest_change(self) -> int:
        """The newest sequence number of the change feed."""
        ...

    def keys_in_state(self, state: KeyState) -> list[str]:
        """The ARNs of the keys in ``state`` (read outside any write transaction)."""
        ...

    def changes_since(self, seq: int) -> tuple[int, set[str]]:
        """The newest change seq and the ARNs changed after ``seq``."""
        ...

    def close(self) -> None: ...
