"""The storage ports the services use: records that are not domain objects, one repository
per concept, the transaction that holds them, and the store."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from strongroom.domain.enums import KeyState, WrappingAlgorithm, WrappingKeySpec
from strongroom.domain.models import (
    Alias,
    CustomKeyStore,
    Grant,
    HsmCluster,
    Key,
    KeyUse,
    MaterialVersion,
    Principal,
    Tag,
)
from strongroom.domain.parameters import ParameterVersion


@dataclass(frozen=True, slots=True)
class AccessKeyRecord:
    access_key_id: str
    principal: Principal
    wrapped_secret: bytes = field(repr=False)
    status: str  # "Active" or "Inactive"


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """A fault injected for users' CI (``strongroom admin fault``): the requests of
    ``account_id`` ("*": every account) to ``operation`` ("*": every KMS operation) wait
    ``latency_ms`` and fail with ``error_code`` at ``rate`` (0 to 1)."""

    account_id: str
    operation: str
    error_code: str
    rate: float
    latency_ms: int
    created: datetime


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


@dataclass(frozen=True, slots=True)
class RootKeyEntry:
    """A root key of the registry: its id (the first 8 bytes of its check value, hex), its
    check value, where it is (``provider`` "file", "softhsm" or "pkcs11"; for a token its
    module path and token and key labels, never the PIN) and its state ("next", "active",
    "retiring" or "retired")."""

    key_id: str
    check_value: bytes
    provider: str
    module: str | None
    token_label: str | None
    key_label: str | None
    state: str


WrappedKind = Literal["material", "access_key", "session", "import_token", "store_password"]


@dataclass(frozen=True, slots=True)
class WrappedRow:
    """A row that holds a wrapped secret: ``names`` are what its AAD is made of (material:
    key ARN and version; access key and session: the access key id; import token: its
    digest and key ARN; a custom key store's kmsuser password: the store id), the first
    ``pk`` of them its primary key."""

    kind: WrappedKind
    names: tuple[str | int, ...]
    wrapped: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class WrappedSample:
    """One secret the database holds wrapped under its root key, to test a root key on:
    an access key's secret (``name`` the access key id) or a version of key material
    (``name`` the key ARN)."""

    kind: Literal["access_key", "material"]
    name: str
    version: int  # the material version; 0 for an access key
    wrapped: bytes = field(repr=False)


# In each repository ``list`` comes last: a method of that name hides the builtin from
# the annotations of the methods after it.


class KeyRepository(Protocol):
    """Key records (metadata, state, policy, rotation settings)."""

    def get(self, arn: str, *, for_update: bool = False) -> Key | None: ...

    def insert(self, key: Key) -> None: ...

    def update(self, key: Key) -> None: ...

    def delete(self, key: Key) -> list[str]:
        """Delete a key with its material (and what is known of it), import tokens, tags,
        grants, aliases and last usage; returns the deleted aliases' ARNs."""
        ...

    def related(self, account: str, key_id: str, *, for_update: bool = False) -> list[Key]:
        """Every key of an account with this key id, in every Region, by Region: a
        multi-Region key's primary and replicas."""
        ...

    def due_for_deletion(self, now: datetime) -> list[Key]:
        """Keys pending deletion whose deletion date has come."""
        ...

    def due_for_rotation(self, now: datetime) -> list[Key]:
        """Enabled keys with automatic rotation on whose next rotation date has come."""
        ...

    def list(
        self, account: str, region: str, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[Key]:
        """Keys of an account and region in (creation date, ARN) order, after ``after``."""
        ...


class MaterialRepository(Protocol):
    """Wrapped key material, what is known of each material version, and import tokens."""

    def insert(self, key_arn: str, version: int, wrapped: bytes, now: datetime) -> None: ...

    def get(self, key_arn: str, version: int) -> bytes | None: ...

    def delete(self, key_arn: str, version: int) -> None:
        """Delete the wrapped material of a version (cryptographic erasure of imported
        material); its ``MaterialVersion`` stays unless deleted as well."""
        ...

    def insert_version(self, info: MaterialVersion) -> None: ...

    def update_version(self, info: MaterialVersion) -> None: ...

    def delete_version(self, key_arn: str, version: int) -> None: ...

    def versions(self, key_arn: str) -> list[MaterialVersion]:
        """Every material version of a key, in version order."""
        ...

    def due_to_expire(self, now: datetime) -> list[MaterialVersion]:
        """Imported material versions still imported whose ValidTo has come."""
        ...

    def insert_import_token(self, record: ImportTokenRecord) -> None: ...

    def get_import_token(self, token_digest: str) -> ImportTokenRecord | None: ...

    def prune_import_tokens(self, before: datetime) -> None:
        """Delete the parameters of import tokens that expired before ``before``."""
        ...


class AliasRepository(Protocol):
    """Aliases, by (account, region, name)."""

    def get(self, account: str, region: str, name: str) -> Alias | None: ...

    def in_every_region(self, account: str, name: str) -> list[Alias]:
        """The aliases called ``name`` in each Region of ``account``, in Region order."""
        ...

    def insert(self, alias: Alias) -> None: ...

    def update(self, alias: Alias) -> None: ...

    def delete(self, alias: Alias) -> None: ...

    def count(self, account: str, region: str, key_id: str) -> int:
        """How many aliases name a key."""
        ...

    def list(
        self, account: str, region: str, *, key_id: str | None, after: str | None, limit: int
    ) -> list[Alias]:
        """Aliases of an account and region (of one key id when given) in name order,
        after the name ``after``."""
        ...


class TagRepository(Protocol):
    """A key's resource tags."""

    def put(self, key_arn: str, new: Iterable[Tag]) -> None:
        """Add tags, replacing the values of tag keys the key has already."""
        ...

    def delete(self, key_arn: str, tag_keys: Sequence[str]) -> None: ...

    def list(self, key_arn: str) -> list[Tag]:
        """A key's tags, ordered by tag key."""
        ...


class GrantRepository(Protocol):
    """Grants on keys."""

    def insert(self, grant: Grant) -> None: ...

    def get(self, grant_id: str) -> Grant | None: ...

    def delete(self, grant_id: str) -> bool:
        """Delete one grant; False when there was none of that id."""
        ...

    def list_retirable(
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

    def count(self, key_arn: str, grantee_principal: str | None = None) -> int:
        """How many grants a key has (for one grantee when given), this transaction's
        included; read from a count the repository keeps as grants are inserted and
        deleted, in time independent of the number of grants."""
        ...

    def list(
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


class IdentityRepository(Protocol):
    """Accounts, principals, access keys and what IAM attaches to users and roles:
    identity policies, tags, trust policies, the maximum session duration."""

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

    def put_policy(
        self, principal_arn: str, policy_name: str, document: str, now: datetime
    ) -> None:
        """Create or replace one inline (identity) policy of a user or role."""
        ...

    def get_policies(self, principal_arn: str) -> list[tuple[str, str]]:
        """A principal's inline policies as (name, document), ordered by name."""
        ...

    def delete_policy(self, principal_arn: str, policy_name: str) -> bool:
        """Delete one inline policy; False when there was none of that name."""
        ...

    def get_tags(self, principal_arn: str) -> list[Tag]:
        """A user's or role's IAM tags, ordered by key."""
        ...

    def set_tags(self, principal_arn: str, tags: Sequence[Tag]) -> None:
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

    def delete_principal(self, arn: str) -> bool:
        """Delete a user or role with what IAM attaches to it: access keys, inline
        policies, tags, trust policy. Its role sessions go first (``SessionRepository.
        delete_for_role``). False when there was no such principal."""
        ...


class SessionRepository(Protocol):
    """Temporary credentials of role sessions."""

    def insert(self, record: SessionRecord) -> None: ...

    def get(self, access_key_id: str) -> SessionRecord | None: ...

    def delete_expired(self, before: datetime) -> int:
        """Forget temporary credentials that expired before ``before``; how many."""
        ...

    def list_live(self, role_arn: str, now: datetime) -> list[SessionRecord]:
        """A role's sessions that have not expired at ``now``, by access key id."""
        ...

    def delete_for_role(self, role_arn: str) -> int:
        """Forget every session of a role, live or expired; how many."""
        ...


class ChangeRepository(Protocol):
    """The change feed: which ARNs changed, so every process drops its cached copies."""

    def record(self, arn: str, now: datetime) -> None: ...

    def prune(self, before: datetime) -> None:
        """Forget changes older than every process's poll could still need."""
        ...


class RootKeyRepository(Protocol):
    """Which root key the database is wrapped under: its key check value, never the key."""

    def check_value(self) -> bytes | None:
        """The recorded key check value; None in a database made before it was recorded."""
        ...

    def record(self, check_value: bytes, now: datetime) -> bytes:
        """Record ``check_value`` unless a value is recorded (by another server that
        started at the same time); return the value recorded now."""
        ...

    def sample(self) -> WrappedSample | None:
        """One wrapped secret of the database (an access key's, else key material's), or
        None when it holds none."""
        ...

    def set_check_value(self, check_value: bytes, now: datetime) -> None:
        """Record ``check_value`` as the database's root key (a migration switched keys)."""
        ...

    def registry(self) -> list[RootKeyEntry]:
        """The root key registry, oldest first; empty when never migrated or rotated."""
        ...

    def register(self, entry: RootKeyEntry, now: datetime) -> None: ...

    def set_state(self, key_id: str, state: str) -> None: ...

    def wrapped_batch(
        self,
        kind: WrappedKind,
        after: tuple[str | int, ...] | None,
        not_prefix: bytes,
        limit: int,
    ) -> list[WrappedRow]:
        """Up to ``limit`` rows of ``kind`` whose wrapped value does not start with
        ``not_prefix``, in primary key order after ``after``."""
        ...

    def count_not_under(self, kind: WrappedKind, not_prefix: bytes) -> int: ...

    def replace_wrapped(self, row: WrappedRow, new: bytes) -> bool:
        """Compare-and-set: store ``new`` for ``row`` if it still holds ``row.wrapped``;
        False when it changed or went (another process wrote it meanwhile)."""
        ...


class KeyUsageRepository(Protocol):
    """The last successful cryptographic use of each key, and when tracking began."""

    def get(self, key_arn: str) -> KeyUse | None: ...

    def record(self, uses: Mapping[str, KeyUse]) -> None:
        """Record each key's use unless a newer one is recorded: several processes and
        nodes write, and the newest use wins whatever the order of their writes."""
        ...

    def tracking_start(self) -> datetime:
        """When tracking began (the migration that made the table ran)."""
        ...


class FaultRepository(Protocol):
    """The injected faults, one per (account, operation); "*" stands for every one."""

    def put(self, fault: FaultRecord) -> None:
        """Add ``fault``, or replace the one of its account and operation."""
        ...

    def delete(self, account_id: str | None, operation: str | None) -> int:
        """Delete the faults of ``account_id`` and ``operation`` (None: any; "*" is only
        the fault of every account, or of every operation); how many went."""
        ...

    def list(self) -> list[FaultRecord]:
        """Every fault, by account then operation."""
        ...


class HsmClusterRepository(Protocol):
    """PKCS#11 tokens registered as CloudHSM clusters, by cluster id."""

    def insert(self, cluster: HsmCluster) -> None: ...

    def get(self, cluster_id: str | None) -> HsmCluster | None:
        """The cluster ``cluster_id``; None when there is none (or for None: an external key
        store has no cluster)."""
        ...

    def delete(self, cluster_id: str) -> bool:
        """Forget a cluster; False when there was none of that id."""
        ...

    def list(self, account: str | None) -> list[HsmCluster]:
        """The clusters of an account (of every account for None), by cluster id."""
        ...


class CustomKeyStoreRepository(Protocol):
    """Custom key stores, their wrapped secrets (kmsuser passwords, proxy secret access keys)
    and which keys live in them."""

    def insert(self, store: CustomKeyStore, wrapped_password: bytes) -> None: ...

    def get(self, store_id: str, *, for_update: bool = False) -> CustomKeyStore | None: ...

    def get_by_name(self, account: str, region: str, name: str) -> CustomKeyStore | None: ...

    def update(self, store: CustomKeyStore) -> None:
        """Write a store's name, cluster, trust anchor, proxy settings (``xks``) and
        connection state."""
        ...

    def wrapped_password(self, store_id: str) -> bytes | None:
        """The store's wrapped secret: the kmsuser password (AWS_CLOUDHSM) or the proxy's
        secret access key (EXTERNAL_KEY_STORE), wrapped under the root key."""
        ...

    def set_wrapped_password(self, store_id: str, wrapped: bytes) -> None: ...

    def delete(self, store_id: str) -> None: ...

    def count(self, account: str, region: str) -> int:
        """How many custom key stores an account has in a Region."""
        ...

    def in_account(self, account: str) -> list[CustomKeyStore]:
        """Every store of an account, in every Region, by store id."""
        ...

    def using_cluster(self, cluster_id: str) -> list[CustomKeyStore]:
        """The stores (of any account and Region) associated with a cluster."""
        ...

    def key_count(self, store_id: str) -> int:
        """How many KMS keys (in any state) live in the store (``keys.custom_key_store_id``)."""
        ...

    def key_using(self, store_id: str, xks_key_id: str) -> str | None:
        """The ARN of the KMS key (in any state) of the external key store ``store_id`` that
        uses the external key ``xks_key_id``; None when no key does."""
        ...

    def list(
        self, account: str, region: str, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[CustomKeyStore]:
        """Stores of an account and Region in (creation date, store id) order, after
        ``after``."""
        ...


class QuotaRepository(Protocol):
    """The operator's quota values (account "*": every account without its own) and the
    shared token buckets of request quotas."""

    def values(self) -> list[tuple[str, str, float]]:
        """Every (account, quota name, value) the operator set."""
        ...

    def value_for(self, account: str, name: str) -> float | None:
        """The account's own value of quota ``name``, else the one for every account, else
        None (AWS's default)."""
        ...

    def put_value(self, account: str, name: str, value: float, now: float) -> None: ...

    def delete_value(self, account: str, name: str) -> bool:
        """Whether there was a value to delete."""
        ...

    def customer_managed_keys(self, account: str, region: str) -> int:
        """How many customer managed keys (any state) an account has in a Region, the keys
        this transaction inserted or deleted included; read from a count the key repository
        keeps as it inserts and deletes, in time independent of the number of keys. On
        PostgreSQL, after this transaction inserted a key, the count's row is locked until
        it ends."""
        ...

    def take(
        self,
        account: str,
        region: str,
        bucket: str,
        *,
        rate: float,
        capacity: float,
        want: int,
        now: float,
    ) -> int:
        """Up to ``want`` whole tokens taken from a shared bucket refilled at ``rate`` per
        second up to ``capacity``, as of ``now`` (epoch seconds)."""
        ...


class ParameterRepository(Protocol):
    """Parameter Store parameters of an account and Region: each parameter's versions and
    tags. A SecureString version holds its KMS ciphertext blob only."""

    def latest(
        self, account: str, region: str, name: str, *, for_update: bool = False
    ) -> ParameterVersion | None:
        """The newest version of parameter ``name``; None when there is no such parameter."""
        ...

    def version(
        self, account: str, region: str, name: str, version: int
    ) -> ParameterVersion | None:
        """Version ``version`` of parameter ``name``; None when it is not kept."""
        ...

    def history(self, account: str, region: str, name: str) -> list[ParameterVersion]:
        """Every kept version of parameter ``name``, oldest first."""
        ...

    def put(self, version: ParameterVersion, *, keep: int) -> None:
        """Store ``version`` as the parameter's newest, dropping its oldest versions beyond
        ``keep``."""
        ...

    def delete(self, account: str, region: str, name: str) -> bool:
        """Delete the parameter, its versions and tags; whether it existed."""
        ...

    def list_latest(
        self, account: str, region: str, *, prefix: str, after: str | None, limit: int
    ) -> list[ParameterVersion]:
        """The newest versions of up to ``limit`` parameters whose names begin with
        ``prefix`` and sort after ``after``, in name order."""
        ...

    def count(self, account: str, region: str) -> int:
        """How many parameters the account has in the Region."""
        ...

    def tags(self, account: str, region: str, name: str) -> list[Tag]:
        """The parameter's tags, ordered by tag key."""
        ...

    def put_tags(self, account: str, region: str, name: str, tags: Sequence[Tag]) -> None:
        """Add tags, replacing the values of tag keys the parameter has already."""
        ...

    def delete_tags(self, account: str, region: str, name: str, keys: Sequence[str]) -> None:
        """Remove the parameter's tags with these keys (keys it lacks are ignored)."""
        ...


class Transaction(Protocol):
    """One database transaction, its repositories by concept: it commits when its block
    ends and rolls back on error. Failures of the database raise StorageError."""

    @property
    def keys(self) -> KeyRepository: ...

    @property
    def material(self) -> MaterialRepository: ...

    @property
    def aliases(self) -> AliasRepository: ...

    @property
    def tags(self) -> TagRepository: ...

    @property
    def grants(self) -> GrantRepository: ...

    @property
    def identities(self) -> IdentityRepository: ...

    @property
    def sessions(self) -> SessionRepository: ...

    @property
    def changes(self) -> ChangeRepository: ...

    @property
    def root_key(self) -> RootKeyRepository: ...

    @property
    def key_usage(self) -> KeyUsageRepository: ...

    @property
    def hsm_clusters(self) -> HsmClusterRepository: ...

    @property
    def custom_key_stores(self) -> CustomKeyStoreRepository: ...

    @property
    def faults(self) -> FaultRepository: ...

    @property
    def quotas(self) -> QuotaRepository: ...

    @property
    def parameters(self) -> ParameterRepository: ...


class Store(Protocol):
    """The database. A failure of the database, in any method or transaction, raises
    StorageError."""

    def transaction(self) -> AbstractContextManager[Transaction]:
        """A transaction that commits when the block ends and rolls back on any error."""
        ...

    def read(self) -> AbstractContextManager[Transaction]:
        """A transaction for reads only (a cache miss): it sees committed data, as
        ``transaction`` does, but takes no write lock, so readers in several processes do
        not wait for each other or for a writer. Nothing may be written in it."""
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

    def counts(self, now: datetime) -> tuple[dict[str, int], int, int]:
        """What the database holds, for the metrics: keys by state, grants, and role
        sessions not expired at ``now`` (read outside any write transaction)."""
        ...

    def listen_for_changes(self, on_change: Callable[[], None]) -> ChangeListening | None:
        """Call ``on_change`` (from a thread of the store's) soon after any process commits
        a change, until stopped; None when the database cannot notify (processes poll)."""
        ...

    def exclusive(self, name: str) -> AbstractContextManager[bool]:
        """Whether this process holds job ``name`` for the block: at most one process of
        all that share the database holds it at a time; the others get False at once."""
        ...

    def close(self) -> None: ...


class ChangeListening(Protocol):
    """A running ``listen_for_changes``."""

    def stop(self) -> None: ...
