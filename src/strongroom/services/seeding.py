"""Seeding: make the database hold what a seed file describes, on every start.

``apply_seed`` runs before the server serves, as the operator (there is no request and no
caller to authorize), in one transaction: every entry is applied, or on any error none is.

The file is the desired state for the fields it names, and says nothing about the others:

* a key that does not exist is created with the named fields and CreateKey's defaults for
  the rest (Enabled, empty description, the default key policy, no tags, no aliases);
  without ``material`` it gets fresh material once, which later starts keep;
* a key that exists keeps its id, spec, usage and material: a different ``key_spec`` or
  ``key_usage`` is an error, and so is different ``material``, since new material would
  leave every ciphertext made under the key undecryptable;
* the named ``description``, ``enabled``, ``policy`` and ``tags`` are set as given (the
  key's tags become exactly the file's); the named ``aliases`` become exactly the key's
  aliases (one the file names that points at another key is moved to this one, one of the
  key's that the file does not name is deleted); fields left out keep their value;
* every change passes the checks of its API operation: the key-state table (a key pending
  deletion refuses them all) and, for a policy, PutKeyPolicy's (principals that exist, the
  lockout safety check with the account root as the caller unless
  ``bypass_policy_lockout_safety_check``).

Keys with given material keep Origin AWS_KMS: they behave exactly like keys whose
material the server made (no PendingImport, no expiry, no DeleteImportedKeyMaterial), as
the keys they stand in for do; the given material makes them reproducible, it is not an
import.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from strongroom.domain.enums import KeyState
from strongroom.domain.errors import KmsError
from strongroom.domain.ids import account_root_arn, alias_arn
from strongroom.domain.models import Alias, Caller, Key, Principal, Tag
from strongroom.domain.operations import Operation, check_state
from strongroom.domain.secrets import KeyBytes
from strongroom.keystores.base import NewMaterial
from strongroom.services.aliases import MAX_ALIASES_PER_KEY
from strongroom.services.core import Core
from strongroom.services.key_records import insert_key, new_key_record
from strongroom.services.policies import validate_key_policy
from strongroom.services.quotas import check_key_count
from strongroom.services.rotation import check_rotatable, with_rotation_period
from strongroom.services.seed_file import Rotation, SeedError, SeedFile, SeedKey
from strongroom.storage.ports import Transaction

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SeedOutcome:
    """Which keys (ARNs) the seed created, changed (with the fields) and left alone."""

    created: list[str] = field(default_factory=list)
    updated: dict[str, list[str]] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)

    def summary(self) -> str:
        total = len(self.created) + len(self.updated) + len(self.unchanged)
        return (
            f"{total} keys: {len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged"
        )


@dataclass(slots=True)
class _Run:
    """One application of a seed: its transaction, its time, what it touched."""

    core: Core
    tx: Transaction
    now: datetime
    generated: dict[str, NewMaterial]
    changed: list[str] = field(default_factory=list)  # key and alias ARNs, for the caches
    # The last key created in each (account, Region): the count of keys is checked once,
    # after the inserts (quotas.check_key_count).
    created: dict[tuple[str, str], Key] = field(default_factory=dict)


def apply_seed(core: Core, seed: SeedFile) -> SeedOutcome:
    """Create or update every key of ``seed`` in one transaction (module doc for the rules).

    Raises SeedError naming the entry and the rule; then nothing has been written.
    """
    with core.store.transaction() as tx:
        missing = [k for k in seed.keys if k.material is None and tx.keys.get(k.arn) is None]
    # Made outside the transaction that writes (an RSA key takes up to a second); a key
    # created meanwhile by another node keeps its own material.
    generated = {k.arn: _new_material(core, _record(k, core.clock())) for k in missing}
    outcome = SeedOutcome()
    with core.store.transaction() as tx:
        run = _Run(core, tx, core.clock(), generated)
        for account in sorted({k.account for k in seed.keys}):
            if tx.identities.ensure_account(account, run.now):
                log.info("seed: created account %s", account)
        for entry in seed.keys:
            _apply_key(run, entry, outcome)
        for last in run.created.values():
            check_key_count(tx, last)
        for arn in run.changed:
            tx.changes.record(arn, run.now)
    for arn in run.changed:
        core.cache.invalidate(arn)
    log.info("seed: %s", outcome.summary())
    return outcome


@contextmanager
def _rule(entry: SeedKey, name: str) -> Iterator[None]:
    """Turn an API error of a service check into a SeedError naming the entry and field."""
    try:
        yield
    except KmsError as exc:
        raise SeedError(f"{entry.where}: {name}: {exc.code}: {exc.message}") from None


def _apply_key(run: _Run, entry: SeedKey, outcome: SeedOutcome) -> None:
    current = run.tx.keys.get(entry.arn, for_update=True)
    if current is None:
        key, fields = _create(run, entry), None
    else:
        key, fields = current, _update(run, entry, current)
    # The one call that applies a seed's rotation block (see apply_rotation_settings).
    with _rule(entry, "rotation"):
        rotation_changed = apply_rotation_settings(run.core, run.tx, key, entry.rotation)
    if fields is None:
        outcome.created.append(entry.arn)
        log.info("seed: %s: created key %s", entry.where, entry.arn)
        return
    if rotation_changed:
        fields.append("rotation")
    if fields:
        outcome.updated[entry.arn] = fields
        log.info("seed: %s: updated %s", entry.where, ", ".join(fields))
    else:
        outcome.unchanged.append(entry.arn)


def _record(entry: SeedKey, now: datetime) -> Key:
    return new_key_record(
        entry.account,
        entry.region,
        entry.key_id,
        key_spec=entry.key_spec,
        key_usage=entry.key_usage,
        description=entry.description or "",
        policy=entry.policy,
        created=now,
        enabled=entry.enabled is not False,
        multi_region=entry.key_id.startswith("mrk-"),  # a primary; replicas come by API
    )


def _new_material(core: Core, key: Key, given: KeyBytes | None = None) -> NewMaterial:
    return core.keystores.for_key(key).new_material(key, given)


def _create(run: _Run, entry: SeedKey) -> Key:
    if entry.policy is not None:
        _check_policy(run, entry, entry.policy)
    key = _record(entry, run.now)
    if entry.material is not None:
        material = _new_material(run.core, key, entry.material)
    else:
        # Made before the transaction, unless the key vanished since (deleted meanwhile).
        material = run.generated.get(entry.arn) or _new_material(run.core, key)
    key = insert_key(run.core, run.tx, key, material, entry.tags or (), count_checked=True)
    run.created[key.account, key.region] = key
    if entry.aliases is not None:
        _apply_aliases(run, entry, key, entry.aliases)
    return key


def _update(run: _Run, entry: SeedKey, current: Key) -> list[str]:
    """Bring an existing key to the entry's named fields; the names of those that changed."""
    _check_same_key(run, entry, current)
    fields = _update_record(run, entry, current)
    if entry.tags is not None and _apply_tags(run, entry, current, entry.tags):
        fields.append("tags")
    if entry.aliases is not None and _apply_aliases(run, entry, current, entry.aliases):
        fields.append("aliases")
    return fields


def _check_same_key(run: _Run, entry: SeedKey, key: Key) -> None:
    """What a key can never change: its spec, its usage, its material."""
    if key.key_spec is not entry.key_spec:
        raise SeedError(
            f"{entry.where}: key_spec: the key exists with key spec {key.key_spec}, "
            f"not {entry.key_spec}; a key's spec never changes"
        )
    if key.key_usage is not entry.key_usage:
        raise SeedError(
            f"{entry.where}: key_usage: the key exists with key usage {key.key_usage}, "
            f"not {entry.key_usage}; a key's usage never changes"
        )
    if entry.material is None:
        return
    # Version 1 is the key's first material, the one a seed gives.
    store = run.core.keystores.for_key(key)
    if not store.same_material(run.tx, key, 1, entry.material):
        raise SeedError(
            f"{entry.where}: material: the key exists with other key material, which is "
            "never replaced (ciphertext and signatures made under it depend on it): give "
            "the key's own material, or leave material out to keep it"
        )


def _update_record(run: _Run, entry: SeedKey, current: Key) -> list[str]:
    """Apply the named description, enabled and policy; the names of those that changed."""
    key, fields = current, []
    if entry.description is not None and entry.description != key.description:
        with _rule(entry, "description"):
            check_state(Operation.UPDATE_KEY_DESCRIPTION, current)
        key = key.evolve(description=entry.description)
        fields.append("description")
    if entry.enabled is not None and entry.enabled != (key.state is KeyState.ENABLED):
        with _rule(entry, "enabled"):
            check_state(Operation.ENABLE_KEY if entry.enabled else Operation.DISABLE_KEY, current)
        key = key.evolve(state=KeyState.ENABLED if entry.enabled else KeyState.DISABLED)
        fields.append("enabled")
    if entry.policy is not None and entry.policy != key.policy:
        _check_policy(run, entry, entry.policy)
        key = key.evolve(policy=entry.policy)
        fields.append("policy")
    if fields:
        run.tx.keys.update(key)
        run.changed.append(key.arn)
    return fields


def _check_policy(run: _Run, entry: SeedKey, policy: str) -> None:
    """PutKeyPolicy's checks, with the account root as the caller of the lockout check."""
    root = Principal(account_root_arn(entry.account), entry.account, "root", "root")
    operator = Caller(root, "", entry.region, "127.0.0.1", "strongroom-seed")
    with _rule(entry, "policy"):
        validate_key_policy(
            run.core,
            operator,
            policy,
            entry.arn,
            bypass_lockout=entry.bypass_policy_lockout_safety_check,
            tx=run.tx,
        )


def _apply_tags(run: _Run, entry: SeedKey, key: Key, tags: tuple[Tag, ...]) -> bool:
    """Make the key's tags exactly ``tags``; True if they changed."""
    current = {t.key: t.value for t in run.tx.tags.list(key.arn)}
    wanted = {t.key: t.value for t in tags}
    if current == wanted:
        return False
    with _rule(entry, "tags"):
        check_state(Operation.TAG_RESOURCE, key)
    stale = [k for k in current if k not in wanted]
    if stale:
        run.tx.tags.delete(key.arn, stale)
    run.tx.tags.put(key.arn, [t for t in tags if current.get(t.key) != t.value])
    return True


def _apply_aliases(run: _Run, entry: SeedKey, key: Key, names: tuple[str, ...]) -> bool:
    """Make the key's aliases exactly ``names``; True if they changed."""
    tx, changed = run.tx, False
    own = tx.aliases.list(
        entry.account, entry.region, key_id=entry.key_id, after=None, limit=MAX_ALIASES_PER_KEY
    )
    for alias in own:
        if alias.name not in names:
            tx.aliases.delete(alias)
            run.changed.append(alias.arn)
            changed = True
    kept = {a.name for a in own}
    for name in names:
        if name in kept:
            continue
        with _rule(entry, f"aliases ({name})"):
            check_state(Operation.CREATE_ALIAS, key)
        arn = alias_arn(entry.region, entry.account, name)
        moved = tx.aliases.get(entry.account, entry.region, name)
        if moved is None:
            tx.aliases.insert(
                Alias(arn, name, key.account, key.region, key.key_id, run.now, run.now)
            )
        else:
            log.info("seed: alias %s moves from key %s to %s", arn, moved.target_key_id, key.arn)
            tx.aliases.update(
                Alias(arn, name, key.account, key.region, key.key_id, moved.creation_date, run.now)
            )
        run.changed.append(arn)
        changed = True
    return changed


def apply_rotation_settings(
    core: Core, tx: Transaction, key: Key, rotation: Rotation | None
) -> bool:
    """THE SEAM FOR AUTOMATIC ROTATION: the one place seeding applies a ``rotation`` block.

    Contract: bring the rotation settings of ``key`` (just created, or existing) to
    ``rotation`` inside ``tx`` and return True if anything changed; ``rotation`` None means
    the file does not name it: change nothing. A KmsError raised here (the key-state check
    of EnableKeyRotation / DisableKeyRotation, say) reaches the operator as a SeedError
    naming the entry and ``rotation``: the call site wraps it.

    The key-state and key-type rules are EnableKeyRotation's and DisableKeyRotation's.
    """
    if rotation is None:
        return False
    current = tx.keys.get(key.arn, for_update=True) or key
    if not rotation.enabled:
        if current.rotation_period_days is None:
            return False
        check_state(Operation.DISABLE_KEY_ROTATION, current)
        updated = current.evolve(rotation_period_days=None, next_rotation_date=None)
    else:
        if current.rotation_period_days == rotation.period_days:
            return False
        check_rotatable(current, automatic=True)
        check_state(Operation.ENABLE_KEY_ROTATION, current)
        updated = with_rotation_period(current, rotation.period_days, core.clock())
    tx.keys.update(updated)
    return True
