"""Frozen domain records: keys, key material versions, aliases, grants, principals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from strongroom.domain.enums import (
    ConnectionErrorCode,
    ConnectionState,
    CustomKeyStoreType,
    ExpirationModel,
    ImportState,
    KeyManager,
    KeyMaterialState,
    KeySpec,
    KeyState,
    KeyUsage,
    MultiRegionKeyType,
    Origin,
    RotationType,
    XksProxyConnectivity,
)


@dataclass(frozen=True, slots=True)
class Key:
    """A KMS key's metadata; its material lives in versions (``MaterialVersion``), wrapped.

    A multi-Region key names the Region of the primary key of its set in ``primary_region``
    (its own Region when it is the primary); single-Region keys have None there. The key id
    is not stored apart: it is the ARN's tail (``key_id``), one string less per cached key.
    """

    arn: str
    account: str
    region: str
    state: KeyState
    description: str
    key_usage: KeyUsage
    key_spec: KeySpec
    origin: Origin
    key_manager: KeyManager
    multi_region: bool
    policy: str
    creation_date: datetime
    current_version: int
    deletion_date: datetime | None = None
    pending_window_days: int | None = None
    primary_region: str | None = None

    @property
    def key_id(self) -> str:
        """The key id (``1234abcd-...`` or ``mrk-...``): what follows ``key/`` in the ARN."""
        arn = self.arn
        return arn[arn.rindex("/") + 1 :]

    @property
    def multi_region_type(self) -> MultiRegionKeyType | None:
        """PRIMARY or REPLICA for a multi-Region key, None for a single-Region key."""
        if self.primary_region is None:
            return None
        if self.primary_region == self.region:
            return MultiRegionKeyType.PRIMARY
        return MultiRegionKeyType.REPLICA

    # Automatic rotation: on with this period (days) when set; the job rotates at the date.
    rotation_period_days: int | None = None
    next_rotation_date: datetime | None = None
    # The KeyMaterialId of ``current_version``, and (origin EXTERNAL) how the imported
    # material that is permanently associated with the key expires: KeyMetadata's fields.
    current_material_id: str | None = None
    expiration_model: ExpirationModel | None = None
    valid_to: datetime | None = None
    # The custom key store (``cks-...``) whose token holds the key's material; None for
    # the keys whose material is wrapped under the root key.
    custom_key_store_id: str | None = None
    # The external key (XksKeyId) of a key in an external key store (origin
    # EXTERNAL_KEY_STORE): the proxy's id of the key that wraps this key's own material.
    xks_key_id: str | None = None

    def evolve(self, **changes: object) -> Key:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class MaterialVersion:
    """What is known of one material version besides the material itself, which is kept
    apart (wrapped) so that deleting it leaves this record: a ListKeyRotations entry.

    The ``material_id`` of imported material derives from the material and the key
    (``crypto.key_import.imported_material_id``), so a re-import finds the version it
    restores; ``import_state`` and the expiry fields are None for generated material."""

    key_arn: str
    version: int
    material_id: str
    state: KeyMaterialState
    created: datetime
    rotation_date: datetime | None = None
    rotation_type: RotationType | None = None
    import_state: ImportState | None = None
    expiration_model: ExpirationModel | None = None
    valid_to: datetime | None = None
    description: str | None = None

    def evolve(self, **changes: object) -> MaterialVersion:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Alias:
    arn: str
    name: str  # with its "alias/" prefix
    account: str
    region: str
    target_key_id: str
    creation_date: datetime
    last_updated_date: datetime


@dataclass(frozen=True, slots=True)
class Tag:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Grant:
    """A grant on a KMS key (``GrantListEntry``). At most one of the two encryption-context
    constraints is set; ``issuing_account`` is the root ARN of the account that created it."""

    grant_id: str
    key_arn: str
    grantee_principal: str
    operations: tuple[str, ...]
    issuing_account: str
    creation_date: datetime
    retiring_principal: str | None = None
    encryption_context_equals: Mapping[str, str] | None = None
    encryption_context_subset: Mapping[str, str] | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """An identity: the account root, a user, a role, or a role session (ARN of the AWS
    form; a session's is ``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION``)."""

    arn: str
    account: str
    kind: str  # "root", "user", "role" or "assumed-role"
    name: str  # for a role session, "ROLE/SESSION"


@dataclass(frozen=True, slots=True)
class RoleSession:
    """The role behind temporary credentials (STS AssumeRole), and their lifetime."""

    role_arn: str
    role_id: str  # AROA..., the role's unique id
    session_name: str
    created: datetime
    expiration: datetime

    @property
    def role_name(self) -> str:
        return self.role_arn.rsplit("/", 1)[1]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request, and from where; the output of authentication.

    ``identity_policies`` are the JSON texts of the principal's inline IAM policies and
    ``tags`` its IAM tags as sorted (key, value) pairs (for a role session: the role's).
    ``session`` is set when the request was signed with temporary credentials."""

    principal: Principal
    access_key_id: str
    region: str
    source_ip: str
    user_agent: str
    identity_policies: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    session: RoleSession | None = None


# Not frozen: one is made per cryptographic request (``services.key_usage.note_use``), and
# a frozen dataclass's __init__ costs ~3.5x as much (object.__setattr__ per field). Nothing
# assigns to one after it is made.
@dataclass(slots=True)
class KeyUse:
    """A successful cryptographic use of a key (GetKeyLastUsage's ``KeyLastUsageData``):
    the operation, when (the audit event's time), the audit event's id and the request id."""

    operation: str
    timestamp: datetime
    event_id: str
    request_id: str


@dataclass(frozen=True, slots=True)
class HsmCluster:
    """A PKCS#11 token an operator registered as a "CloudHSM cluster" of an account
    (``strongroom admin hsm-cluster add``). ``trust_anchor`` is the PEM text of the cluster's
    trust anchor certificate (AWS's customerCA.crt): clusters with the same one share a
    backup history, as AWS's related clusters do. ``softhsm`` marks a token of the data
    directory's own SoftHSM2 (``hsm-cluster add --softhsm``). No PIN is kept here: the
    password belongs to the custom key store."""

    cluster_id: str
    account: str
    module_path: str
    token_label: str
    trust_anchor: str
    hsm_count: int
    softhsm: bool
    created: datetime


@dataclass(frozen=True, slots=True)
class XksProxySettings:
    """How the KMS reaches an external key store's proxy (``XksProxyConfigurationType``,
    without the secret access key, which is kept apart, wrapped under the root key)."""

    uri_endpoint: str  # scheme and host (and port): "https://xks.example.com"
    uri_path: str  # "[/<prefix>]/kms/xks/v1"
    connectivity: XksProxyConnectivity
    access_key_id: str


@dataclass(frozen=True, slots=True)
class CustomKeyStore:
    """A custom key store (``CustomKeyStoresListEntry``): of type AWS_CLOUDHSM, with its
    cluster and trust anchor (the kmsuser password kept apart, wrapped under the root key),
    or of type EXTERNAL_KEY_STORE, with its proxy settings (``xks``; the proxy's secret
    access key kept apart, wrapped under the root key, in the same place)."""

    store_id: str
    account: str
    region: str
    name: str
    store_type: CustomKeyStoreType
    cluster_id: str | None
    trust_anchor: str | None
    connection_state: ConnectionState
    connection_error_code: ConnectionErrorCode | None
    creation_date: datetime
    xks: XksProxySettings | None = None

    def evolve(self, **changes: object) -> CustomKeyStore:
        return replace(self, **changes)  # type: ignore[arg-type]
