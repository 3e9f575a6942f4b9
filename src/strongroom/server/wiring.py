"""The only place where concrete storage and key store backends meet the services."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from strongroom.audit.log import AuditLog
from strongroom.keystores.filekey import FileRootKey
from strongroom.server.authn import Authenticator
from strongroom.server.settings import Settings, load_settings
from strongroom.services.cache import KeyCache
from strongroom.services.core import Clock, Core, system_clock
from strongroom.services.identities import (
    CredentialResolver,
    create_access_key,
    create_principal,
    ensure_account,
    put_identity_policy,
)
from strongroom.services.seed_file import SeedError, SeedFile, parse_seed
from strongroom.services.seeding import apply_seed
from strongroom.storage.ports import Store
from strongroom.storage.sql import SqlStore

log = logging.getLogger(__name__)

ADMIN_USER = "admin"
PROFILE = "strongroom"
# The admin user's inline policy: everything KMS offers, as an AWS administrator has
# (the default key policy delegates to identity policies; without one a user may do nothing).
ADMIN_POLICY_NAME = "strongroom-admin"
ADMIN_POLICY = (
    '{"Version": "2012-10-17", "Statement": '
    '[{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}'
)


@dataclass(slots=True)
class Runtime:
    settings: Settings
    core: Core
    credentials: CredentialResolver
    authenticator: Authenticator
    audit: AuditLog


def open_store(settings: Settings) -> Store:
    """The configured database: SQLite in the data directory, or the database URL's."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if settings.database_url is None:
        # Only the owner reads the database; SQLite gives its -wal and -shm files the
        # database file's mode.
        os.close(os.open(settings.sqlite_path, os.O_WRONLY | os.O_CREAT, 0o600))
    return SqlStore(settings.db_url)


def build_core(settings: Settings, clock: Clock = system_clock) -> Core:
    store = open_store(settings)
    return Core(
        store=store,
        root_key=FileRootKey(settings.root_key_path),
        cache=KeyCache(),
        clock=clock,
        grants_per_key=settings.grants_per_key,
        grants_per_grantee_per_key=settings.grants_per_grantee_per_key,
        on_demand_rotation_limit=settings.on_demand_rotation_limit,
    )


def build_runtime(settings: Settings, clock: Clock = system_clock) -> Runtime:
    core = build_core(settings, clock)
    credentials = CredentialResolver(core)
    authenticator = Authenticator(
        credentials, dev_account=settings.account if settings.dev else None
    )
    audit = AuditLog(settings.audit_path, fsync=settings.audit_fsync)
    return Runtime(settings, core, credentials, authenticator, audit)


def prepare(settings: Settings, *, seed: bool = False) -> None:
    """Run once before serving: migrate the schema, create the configured account and,
    on first start, an admin user whose access key goes to DATA_DIR/credentials (0600);
    then, when ``seed`` asks for it (``serve`` does, admin commands do not), apply the
    seed file of the settings, if any, which is read and checked before anything is written.

    Raises SeedError (a ValueError: the command exits 2 with its message) for a seed file
    that cannot be read, parsed or applied; the seed then has written nothing."""
    path = settings.seed if seed else None
    seed_file = None if path is None else _read_seed(path, settings.account)
    core = build_core(settings)
    try:
        core.store.migrate()
        ensure_account(core, settings.account)
        if not settings.credentials_path.exists():
            write_admin_credentials(core, settings.account, settings.credentials_path)
        if seed_file is not None:
            with _naming(path):
                apply_seed(core, seed_file)
    finally:
        core.store.close()


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
    text = (
        f"[{PROFILE}]\naws_access_key_id = {key.access_key_id}\n"
        f"aws_secret_access_key = {key.secret_access_key}\n"
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    log.info("wrote the access key of %s to %s (profile %s)", arn, path, PROFILE)


def create_app():  # type: ignore[no-untyped-def]
    """ASGI app factory for worker processes: settings come from STRONGROOM_* variables."""
    from strongroom.server.app import KmsApp

    return KmsApp(build_runtime(load_settings()))
