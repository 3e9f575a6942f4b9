"""The audit records of the changes AWS KMS makes on its own, without a request: a key
deleted when its waiting period ends (DeleteKey), rotated on its schedule (RotateKey), its
imported material erased when it expires (DeleteExpiredKeyMaterial). CloudTrail records
each as an AwsServiceEvent ("Logging AWS KMS API calls with AWS CloudTrail": ct-delete-key,
ct-rotatekey, ct-deleteexpiredkeymaterial).

A scheduled job writes them as the request pipeline writes a request's: the intent, made
durable before the change commits (``announce``: when it cannot be written, the job's
transaction rolls back and nothing changes), then the event once the change has committed
(``record``). A crash between the two leaves the intent alone, which ``strongroom audit
unmatched`` lists: the change was attempted and may have been made. Both go
through ``Core.trail`` (the process's audit log, from the job's thread); a core without a
trail (the admin commands, tests of services alone) writes none."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from strongroom.audit.events import (
    AWS_INTERNAL,
    build_intent,
    build_service_event,
    service_identity,
)
from strongroom.domain.requestids import new_id
from strongroom.services.core import Core, Trail

log = logging.getLogger("strongroom.audit")


@dataclass(slots=True)
class ServiceChange:
    """One change a job is about to make to the key ``key_arn``; its intent and its event
    share ``request_id``."""

    event_name: str
    key_arn: str
    when: datetime
    request_id: str = field(default_factory=new_id)
    # The event's responseElements and serviceEventDetails, known once the change is made.
    response: dict[str, Any] | None = None
    details: dict[str, Any] | None = None


def announce(core: Core, changes: list[ServiceChange]) -> None:
    """Make the intents of ``changes`` durable; call it inside the transaction that makes
    them, before it commits. Raises OSError or ValueError when the trail cannot take them
    (the caller's transaction then rolls back)."""
    if core.trail is None or not changes:
        return
    core.trail(
        [
            build_intent(
                event_time=change.when,
                event_name=change.event_name,
                region=change.key_arn.split(":")[3],
                request_id=change.request_id,
                source_ip=AWS_INTERNAL,
                user_agent=AWS_INTERNAL,
                user_identity=service_identity(change.key_arn.split(":")[4]),
                request_parameters={"KeyId": change.key_arn},
            )
            for change in changes
        ]
    )


def record(core: Core, changes: list[ServiceChange]) -> None:
    """Make the events of ``changes`` durable, once they have committed. When the trail
    cannot take them the failure is logged and the job goes on: the changes stand, and
    their intents say they were attempted."""
    if core.trail is None or not changes:
        return
    try:
        _write_events(core.trail, changes)
    except (OSError, ValueError):
        log.exception(
            "audit: the events of %d scheduled changes could not be written (their intents "
            "stand): %s",
            len(changes),
            ", ".join(f"{c.event_name} {c.key_arn}" for c in changes),
        )


def _write_events(trail: Trail, changes: list[ServiceChange]) -> None:
    trail(
        [
            build_service_event(
                event_time=change.when,
                event_name=change.event_name,
                key_arn=change.key_arn,
                request_id=change.request_id,
                response_elements=change.response,
                details=change.details,
            )
            for change in changes
        ]
    )


def key_details(key_arn: str, **more: Any) -> dict[str, Any]:
    """``serviceEventDetails`` naming the key by its id, then ``more``."""
    details: dict[str, Any] = {"keyId": key_arn.rsplit("/", 1)[-1]}
    details.update(more)
    return details
