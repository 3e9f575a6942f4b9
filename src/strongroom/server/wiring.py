"""The only place where concrete storage and key store backends meet the services."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from strongroom.audit.lifecycle import Lifecycle
from strongroom.audit.log import AuditLog
from strongroom.audit.signing import load_signer
from strongroom.domain.errors import KeyStoreError
from strongroom.keystores.base import KeyStores, RootKey
from strongroom.keystores.cloudhsm import CloudHsmKeyStore, StoreConnections
from strongroom.keystores.external import ExternalKeyStore, XksConnections
from strongroom.keystores.filekey import FileRootKey
from strongroom.keystores.pkcs11_root import KeyNotFound, Pkcs11RootKey
from strongroom.keystores.pkcs11_token import Token
from strongroom.keystores.ring import RootKeyRing
from strongroom.keystores.software import SoftwareKeyStore
from strongroom.keystores.xks_client import XksClient
from strongroom.server.authn import Authenticator
from strongroom.server.client_config import PROFILE, credentials_profile, write_config
from strongroom.server.faults import FaultTable
from strongroom.server.quotas import RequestQuotas
from strongroom.server.root_keys import (
    RootKeyFollower,
    create_softhsm_root,
    entry_for,
    open_token,
    open_token_key,
    ring_from_registry,
    token_config,
)
from strongroom.server.settings import Settings, load_settings
from strongroom.server.startup import (
    StartError,
    check_data_dir,
    check_database_url,
    make_data_dir,
    opening_database,
    shown_url,
    undone_on_failure,
)
from strongroom.services.cache import KeyCache
from strongroom.services.core import Clock, Core, system_clock
from strongroom.services.identities import (
    CredentialResolver,
    create_access_key,
    create_principal,
    ensure_account,
    put_identity_policy,
)
from strongroom.services.root_key import (
    ACTIVE,
    bind_root_key,
    database_binding,
    register_first,
    registry,
)
from strongroom.services.seed_file import SeedError, SeedFile, parse_seed
from strongroom.services.seeding import apply_seed
from strongroom.services.store_tokens import connected_token
from strongroom.services.xks_connections import connected_client
from strongroom.storage.ports import Store
from strongroom.storage.sql import SqlStore

log = logging.getLogger(__name__)

ADMIN_USER = "admin"
_KCV_SHOWN = 8  # hex digits of a key check value a message shows
# The admin user's inline policy: everything KMS and Parameter Store offer, as an AWS
# administrator has (the default key policy delegates to identity policies; without one a
# user may do nothing). Migration 0016 gave ssm:* to admins made before.
ADMIN_POLICY_NAME = "strongroom-admin"
ADMIN_POLICY = (
    '{"Version": "2012-10-17", "Statement": '
    '[{"Effect": "Allow", "Action": ["kms:*", "ssm:*"], "Resource": "*"}]}'
)


@dataclass(slots=True)
class Runtime:
    settings: Settings
    core: Core
    credentials: CredentialResolver
    authenticator: Authenticator
    audit: AuditLog
    # Follows the root key registry (a migration or rotation while serving).
    root_keys: RootKeyFollower | None = None
    # The faults injected into requests (strongroom admin fault), reloaded by the jobs.
    faults: FaultTable = field(default_factory=FaultTable)
    # The request quotas' buckets (ThrottlingException); off unless built by build_runtime.
    quotas: RequestQuotas | None = None


def open_store(settings: Settings) -> Store:
    """The configured database: SQLite in the data directory (made, mode 0700, if need
    be), or the database URL's."""
    if settings.database_url is None:
        make_data_dir(settings.data_dir)
        # Only the owner reads the database; SQLite gives its -wal and -shm files the
        # database file's mode.
        os.close(os.open(settings.sqlite_path, os.O_WRONLY | os.O_CREAT, 0o600))
    return SqlStore(settings.db_url, timeout=settings.database_timeout_seconds)


def build_core(settings: Settings, clock: Clock = system_clock) -> Core:
    """The core over the configured database and root key; ``prepare`` has run before."""
    store = open_store(settings)
    return _core(settings, store, open_root_key(settings, store), clock)


def open_root_key(settings: Settings, store: Store) -> RootKeyRing:
    """The root key ring the services use; ``prepare`` checked it: the registry's keys once
    a migration or rotation (or a first start on a token) made one, else the configured
    file root key."""
    entries = registry(store)
    if entries:
        return ring_from_registry(entries, settings)
    if settings.root_key == "file":
        key: RootKey = FileRootKey(settings.root_key_path)
        return RootKeyRing(key, file_key=key)
    try:
        return RootKeyRing(open_token_key(token_config(settings)))
    except KeyStoreError as exc:  # a KeyNotFound here: the key went after prepare
        raise StartError(str(exc)) from None


def _core(settings: Settings, store: Store, root_key: RootKey, clock: Clock) -> Core:
    connections = _StoreConnections()
    core = Core(
        store=store,
        root_key=root_key,
        cache=KeyCache(settings.key_cache_keys),
        keystores=build_keystores(
            store, root_key, connections, connections, settings.material_cache_keys
        ),
        clock=clock,
        grants_per_key=settings.grants_per_key,
        grants_per_grantee_per_key=settings.grants_per_grantee_per_key,
        on_demand_rotation_limit=settings.on_demand_rotation_limit,
        softhsm_data_dir=settings.data_dir,
        xks_ca_bundle=settings.xks_ca_bundle,
    )
    connections.core = core
    return core


class _StoreConnections:
    """The connected custom key stores of a core, as the key stores of their keys ask for
    them: tokens (``services.store_tokens``, for ``keystores.cloudhsm``) and proxies
    (``services.xks_connections``, for ``keystores.external``)."""

    def __init__(self) -> None:
        self.core: Core | None = None

    def _core(self) -> Core:
        if self.core is None:
            raise KeyStoreError("the custom key stores are used before the core is built")
        return self.core

    def token(self, store_id: str, key_arn: str) -> Token:
        return connected_token(self._core(), store_id, key_arn=key_arn)

    def lost(self, store_id: str) -> None:
        self._core().store_tokens.forget(store_id)

    def client(self, store_id: str, key_arn: str) -> XksClient:
        return connected_client(self._core(), store_id, key_arn=key_arn)


def build_keystores(
    store: Store,
    root_key: RootKey,
    connections: StoreConnections,
    proxies: XksConnections,
    material_cache_keys: int = 100_000,
) -> KeyStores:
    """The key stores: the software store, its material wrapped under ``root_key`` and
    cached for at most ``material_cache_keys`` keys; the store of keys in custom key
    stores of type AWS_CLOUDHSM, in their tokens through ``connections``; and the store
    of keys in external key stores, their own material in the software store, wrapped
    again through their store's proxy (``proxies``)."""
    software = SoftwareKeyStore(store, root_key, material_cache_keys)
    return KeyStores(
        software=software,
        custom=CloudHsmKeyStore(connections),
        external=ExternalKeyStore(software, proxies),
    )


def build_runtime(settings: Settings, clock: Clock = system_clock) -> Runtime:
    core = build_core(settings, clock)
    credentials = CredentialResolver(core)
    authenticator = Authenticator(
        credentials, dev_account=settings.account if settings.dev else None
    )
    audit = open_audit_log(settings, core.root_key)
    core.trail = audit.write_now  # the scheduled jobs' records (services.service_events)
    follower = (
        RootKeyFollower(settings, core.store, core.root_key)
        if isinstance(core.root_key, RootKeyRing)
        else None
    )
    quotas = RequestQuotas(
        core,
        enabled=settings.request_quotas,
        mode=settings.quota_sharing,
        workers=settings.workers,
        sqlite=settings.database_url is None,
    )
    return Runtime(settings, core, credentials, authenticator, audit, follower, quotas=quotas)


def open_audit_log(
    settings: Settings, root_key: RootKey | None, *, prefill: bool = True
) -> AuditLog:
    """The audit writer of this process, as the settings ask for it (the audit directory,
    fsync, the life cycle) with the digest signing key unwrapped under ``root_key`` (None:
    no digests); not started. A server and an admin command (``prefill`` False: a
    short-lived writer) build theirs alike. Raises KeyStoreError when the signing key
    cannot be read or made, OSError when the audit directory cannot be made."""
    return AuditLog(
        settings.audit_path,
        fsync=settings.audit_fsync,
        lifecycle=audit_lifecycle(settings),
        signer=None if root_key is None else load_signer(settings.audit_path, root_key),
        prefill=prefill,
    )


def audit_lifecycle(settings: Settings) -> Lifecycle:
    """The audit segments' life cycle the settings ask for."""
    return Lifecycle(
        segment_bytes=settings.audit_segment_bytes,
        segment_seconds=settings.audit_segment_seconds,
        digest_seconds=settings.audit_digest_seconds,
        compress=settings.audit_compress,
        retention_days=settings.audit_retention_days,
        retention_unexported=settings.audit_retention_unexported,
    )


def config_path(settings: Settings) -> Path:
    """The AWS shared config file beside the credentials (``server/client_config.py``)."""
    return settings.data_dir / "config"


def prepare(
    settings: Settings,
    *,
    seed: bool = False,
    endpoint: str | None = None,
    ca_bundle: Path | None = None,
) -> None:
    """Run once before serving, and before each admin command:

    1. check the data directory, the database URL and the seed file (``seed``: ``serve``
       applies it, admin commands do not);
    2. open the database, migrate its schema, and check the root key: the database records
       the key check value of the root key it is wrapped under, and a root key that differs
       is refused; a database in use (it has accounts) never gets a new root key;
    3. only then make what is missing: the data directory, the root key (for a database
       not in use), the configured account, on first start an admin user whose access key
       goes to DATA_DIR/credentials (0600), and, given the server's ``endpoint``, the AWS
       config file beside it (``client_config.write_config``, naming ``ca_bundle`` for
       https with a certificate clients must be told to trust); then apply the seed.

    A check that fails raises StartError (a ValueError: the command prints its one line and
    exits 2) and leaves no data directory, root key or credentials behind. Once the
    database is bound to a root key this start made, that key stays: the database needs it.
    Raises SeedError (a ValueError) for a seed file that cannot be read, parsed or
    applied; the seed then has written nothing."""
    path = settings.seed if seed else None
    seed_file = None if path is None else _read_seed(path, settings.account)
    check_data_dir(settings.data_dir)
    if settings.database_url is not None:
        check_database_url(settings.database_url)
    with undone_on_failure(settings.data_dir) as made:
        if settings.database_url is None and not settings.sqlite_path.exists():
            made += [
                settings.sqlite_path.with_name(settings.sqlite_path.name + suffix)
                for suffix in ("", "-wal", "-shm", "-journal")
            ]
        # A token root key is opened (module, token, PIN) before the database is written.
        token_key = _token_root_key(settings)
        store = open_store(settings)
        try:
            with opening_database(settings.db_url):
                store.migrate()
                entries = registry(store)
            if entries:
                root_key: RootKey = ring_from_registry(entries, settings)
                made.clear()
            elif settings.root_key == "file":
                root_key = _bound_root_key(settings, store, made)
            else:
                root_key = _bound_token_key(settings, store, token_key, made)
        except BaseException:
            store.close()
            raise
    core = _core(settings, store, root_key, system_clock)
    try:
        ensure_account(core, settings.account)
        if not settings.credentials_path.exists() and not _admin_has_keys(core, settings):
            write_admin_credentials(core, settings.account, settings.credentials_path)
        if endpoint is not None:
            write_config(config_path(settings), endpoint, ca_bundle=ca_bundle)
        if seed_file is not None:
            with _naming(path):
                apply_seed(core, seed_file)
    finally:
        core.store.close()


def _bound_root_key(settings: Settings, store: Store, made: list[Path]) -> RootKey:
    """The root key the database is wrapped under: the data directory's, which the
    database's check value must name, or, for a database not in use, a new one when the
    data directory has none. StartError when they differ or the key is missing."""
    url, key_path = settings.db_url, settings.root_key_path
    with opening_database(url):
        store.migrate()
        binding = database_binding(store)
    if key_path.exists():
        try:
            root_key = FileRootKey(key_path)
        except KeyStoreError as exc:
            raise StartError(f"{exc}; restore the root key file from its backup") from None
    elif binding.in_use:
        raise StartError(
            f"the database at {shown_url(url)} is in use, but there is no root key at "
            f"{key_path}: copy the root.key of the server that made the database to "
            f"{key_path} (README 'Several servers on one database')"
        )
    else:
        make_data_dir(settings.data_dir)
        made.append(key_path)
        root_key = FileRootKey.create(key_path)
    with opening_database(url):
        recorded = bind_root_key(store, root_key, system_clock())
    if recorded is not None:
        raise StartError(_mismatch(url, key_path, root_key, recorded))
    made.clear()  # the database is bound to this root key now: it stays
    return root_key


def _token_root_key(settings: Settings) -> RootKey | None:
    """The token root key of ``root_key = "pkcs11"`` or ``"softhsm"``, opened and checked,
    or None when it does not exist yet (no SoftHSM2 token made under DATA_DIR, or no key of
    the label in the token): ``_bound_token_key`` then makes it for a database not in use.
    StartError for a missing module or token, a wrong PIN."""
    if settings.root_key == "file":
        return None
    if settings.root_key == "softhsm" and not settings.softhsm_pin_path.exists():
        return None
    try:
        return open_token_key(token_config(settings))
    except KeyNotFound:
        return None


def _bound_token_key(
    settings: Settings, store: Store, key: RootKey | None, made: list[Path]
) -> RootKey:
    """Like ``_bound_root_key`` for a key in a token: a database in use must be wrapped
    under it; a database not in use gets a new key in the token (for softhsm: a new token
    under DATA_DIR) when there is none."""
    url = settings.db_url
    with opening_database(url):
        store.migrate()
        binding = database_binding(store)
    if key is None:
        what = _token_key_named(settings)
        if binding.in_use:
            raise StartError(
                f"the database at {shown_url(url)} is in use, but {what} does not exist: "
                + _token_hint(settings)
            )
        try:
            if settings.root_key == "softhsm":
                key = create_softhsm_root(settings)
            else:
                config = token_config(settings)
                key = Pkcs11RootKey.generate(open_token(config), config.key_label)
        except KeyStoreError as exc:
            raise StartError(f"cannot make {what}: {exc}") from None
    with opening_database(url):
        recorded = bind_root_key(store, key, system_clock())
        if recorded is None:
            # The registry names the token key from now on: a rotation starts from it, and
            # every server opens what it names.
            register_first(store, entry_for(key, settings.root_key, token_config(settings), ACTIVE))
    if recorded is not None:
        mine = key.check_value().hex()[:_KCV_SHOWN]
        said = (
            f"is wrapped under root key {recorded.hex()[:_KCV_SHOWN]}"
            if recorded
            else "holds secrets that do not unwrap under it"
        )
        raise StartError(
            f"the database at {shown_url(url)} {said}, but {_token_key_named(settings)} is "
            f"root key {mine}: {_token_hint(settings)}"
        )
    made.clear()
    return key


def _token_hint(settings: Settings) -> str:
    if settings.root_key_path.exists():
        return (
            f"it is wrapped under the file root key {settings.root_key_path}; strongroom admin "
            "root-key migrate moves it onto a token (README 'Root key in an HSM')"
        )
    return "configure the token and key the database is wrapped under"


def _token_key_named(settings: Settings) -> str:
    if settings.root_key == "softhsm":
        return f"the SoftHSM2 root key under {settings.data_dir / 'softhsm'}"
    return (
        f"key {settings.pkcs11_key_label!r} in PKCS#11 token {settings.pkcs11_token_label!r} "
        f"of {settings.pkcs11_module}"
    )


def _mismatch(url: str, key_path: Path, root_key: RootKey, recorded: bytes) -> str:
    mine = root_key.check_value().hex()[:_KCV_SHOWN]
    where = f"the database at {shown_url(url)}"
    if recorded:
        said = f"{where} is wrapped under root key {recorded.hex()[:_KCV_SHOWN]}"
    else:
        said = f"the secrets of {where} do not unwrap under {key_path}"
    return (
        f"{said}, but {key_path} is root key {mine}: copy the root.key of the server that "
        f"made the database to {key_path} (README 'Several servers on one database')"
    )


def _admin_has_keys(core: Core, settings: Settings) -> bool:
    arn = f"arn:aws:iam::{settings.account}:user/{ADMIN_USER}"
    with core.store.transaction() as tx:
        return bool(tx.identities.list_access_keys(arn))


def _read_seed(path: Path, default_account: str) -> SeedFile:
    """The checked seed file at ``path``; SeedError naming the file, the entry and the rule."""
    with _naming(path):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SeedError(f"cannot read it: {exc}") from None
        return parse_seed(text, default_account=default_account)


@contextmanager
def _naming(path: Path | None) -> Iterator[None]:
    try:
        yield
    except SeedError as exc:
        raise SeedError(f"seed file {path}: {exc}") from None


def write_admin_credentials(core: Core, account: str, path: Path) -> None:
    arn = f"arn:aws:iam::{account}:user/{ADMIN_USER}"
    with core.store.transaction() as tx:
        exists = tx.identities.get_principal(arn) is not None
    if not exists:
        create_principal(core, account, "user", ADMIN_USER)
        put_identity_policy(core, "user", account, ADMIN_USER, ADMIN_POLICY_NAME, ADMIN_POLICY)
    key = create_access_key(core, arn)
    text = credentials_profile(PROFILE, key.access_key_id, key.secret_access_key)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    log.info("wrote the access key of %s to %s (profile %s)", arn, path, PROFILE)


def create_app():  # type: ignore[no-untyped-def]
    """ASGI app factory for worker processes: settings come from STRONGROOM_* variables."""
    from strongroom.server.app import KmsApp

    return KmsApp(build_runtime(load_settings()))
