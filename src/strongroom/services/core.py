"""What every service function works with: storage, root key, key stores, clock, caches,
request context."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from strongroom.authz.decision import Authorizer
from strongroom.domain.models import Caller
from strongroom.domain.requestids import new_id
from strongroom.keystores.base import KeyStores, RootKey
from strongroom.services.cache import KeyCache
from strongroom.services.quotas import QuotaValues
from strongroom.services.store_tokens import StoreTokens
from strongroom.services.usage_tracker import UsageTracker
from strongroom.services.xks_connections import XksClients
from strongroom.storage.ports import Store

Clock = Callable[[], datetime]
Trail = Callable[[Sequence[Mapping[str, Any]]], None]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class RequestContext:
    """One request: who calls, in which region, with which grant tokens; services note the
    resources they touch."""

    caller: Caller
    request_id: str
    resources: list[str] = field(default_factory=list)
    grant_tokens: tuple[str, ...] = ()  # the request's GrantTokens
    # The eventID of the request's audit event, known before the event is built so that
    # GetKeyLastUsage can name the event of a key's last use.
    event_id: str = field(default_factory=new_id)
    # kms:ViaService (``ssm.<region>.amazonaws.com``) when an integrated service of this
    # server (Parameter Store) makes the request to KMS on the caller's behalf; None for a
    # direct call. Only ``services.access`` reads it.
    via_service: str | None = None
    # The audit events of the calls this request made to another service on the caller's
    # behalf (the KMS Encrypt behind an SSM PutParameter), written before the request's own.
    service_events: tuple[dict[str, Any], ...] = ()
    # The key uses among those calls, each (the call's context, its operation, its event's
    # time): noted for GetKeyLastUsage once their events are durable, like a request's own.
    service_uses: tuple[tuple[RequestContext, str, datetime], ...] = ()

    @property
    def account(self) -> str:
        return self.caller.principal.account

    @property
    def region(self) -> str:
        return self.caller.region


ON_DEMAND_ROTATION_LIMIT = 25
"""On-demand rotations per KMS key (AWS resource quota "On-demand rotation", not adjustable)."""

CUSTOM_KEY_STORES_PER_ACCOUNT = 10
"""Custom key stores per account and Region (AWS resource quota "Custom key stores")."""


@dataclass(slots=True)
class Core:
    store: Store
    # Wraps access-key secrets, session secrets and import tokens; key material is the
    # key stores' (``keystores``).
    root_key: RootKey
    cache: KeyCache
    # Where key material lives and crypto runs: ``keystores.for_key(key)``.
    keystores: KeyStores
    clock: Clock = system_clock
    # Resource quotas of AWS KMS (resource-limits.html), lowered by tests.
    grants_per_key: int = 50_000
    grants_per_grantee_per_key: int = 500
    on_demand_rotation_limit: int = ON_DEMAND_ROTATION_LIMIT
    custom_key_stores_per_account: int = CUSTOM_KEY_STORES_PER_ACCOUNT
    # The data directory whose own SoftHSM2 holds the tokens of clusters registered with
    # ``hsm-cluster add --softhsm`` (None: no such clusters are reachable).
    softhsm_data_dir: Path | None = None
    # A PEM file of the CAs to trust for https XKS proxies (None: the system's).
    xks_ca_bundle: Path | None = None
    # Makes audit records durable from any thread (the process's ``AuditLog.write_now``):
    # the intents and events of the changes the scheduled jobs make (services.service_events).
    # None: no trail (a core without a server, as the admin commands and tests build it).
    trail: Trail | None = None
    # The authorization decisions and what they keep (parsed policies, principals, contexts),
    # on this core's clock; only services.access uses it.
    authz: Authorizer = field(init=False)
    # The key uses this process has seen and not yet written (services.last_usage).
    key_usage: UsageTracker = field(init=False)
    # The logged-in tokens of the connected custom key stores this process has used.
    store_tokens: StoreTokens = field(init=False)
    # The XKS proxy clients of the connected external key stores this process has used.
    xks_clients: XksClients = field(init=False)
    # The operator's quota values (``strongroom admin quota``), reloaded on their change.
    quota_values: QuotaValues = field(init=False)

    def __post_init__(self) -> None:
        self.authz = Authorizer(None if self.clock is system_clock else self.clock)
        self.key_usage = UsageTracker()
        self.store_tokens = StoreTokens()
        self.xks_clients = XksClients()
        self.quota_values = QuotaValues()
        # What a key store cached of a key goes when the key cache forgets the key.
        self.cache.add_listener(self.keystores)
