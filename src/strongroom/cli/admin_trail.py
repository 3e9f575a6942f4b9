"""The audit trail of ``strongroom admin``: a command that changes state (``admin_events``)
leaves its intent and its event in the trail, as a request to the server does.

The command is one more writer of the audit directory: it opens an audit log of its own, set
up from the same settings as a server's (``server.wiring.open_audit_log``: the directory,
fsync, the digest signing key unwrapped under the root key), writes one segment and closes it
with a final signed digest, so that ``audit verify`` vouches for it and ``audit unmatched``
reads it as any writer's. No zeros are written ahead: the command writes two records.

The order is the server's and the scheduled jobs' (``services/service_events.py``):

1. the intent, made durable before the command changes anything: if the trail cannot be
   opened or cannot take it, the command fails ("nothing was changed") and changes nothing;
2. the change;
3. its event, once the change committed. A change refused (a KmsError: the user exists, the
   policy is malformed; or a ValueError of the command) changed nothing: its event carries
   the ``errorCode`` (the KMS error's code; ``ValidationError``, IAM's code for bad input, for
   the command's own refusals), which matches the intent as a refused request's event does.
   When the event cannot be written, the change stands and the command fails saying so;
   its intent alone says the change was attempted. Any other failure of the change (a
   database gone in the middle) writes no event either: it may have been made, and
   ``audit unmatched`` lists its intent.

Who ran it: no IAM principal, but the operating system's user the command ran as (the
effective user) on this host (``audit.events.operator_identity``); ``sourceIPAddress`` the
host's name, ``userAgent`` ``strongroom-cli/<version> command/admin.<command>`` (as the
AWS CLI ends its user agent with ``command/<service>.<operation>``). IAM is global: its
events, and the others, are in ``us-east-1``, where CloudTrail records IAM's.
"""

from __future__ import annotations

import argparse
import logging
import os
import pwd
import socket
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strongroom.audit.events import build_event, build_intent, operator_identity
from strongroom.cli.admin_events import Audited, Members, command_of
from strongroom.domain.errors import KeyStoreError, KmsError
from strongroom.domain.requestids import new_id

if TYPE_CHECKING:
    from strongroom.audit.log import AuditLog
    from strongroom.keystores.base import RootKey
    from strongroom.server.settings import Settings

log = logging.getLogger(__name__)

REGION = "us-east-1"  # where CloudTrail records the events of IAM, a global service
REFUSED = "ValidationError"  # the errorCode of a command's own refusal (a ValueError)


def run_recorded(
    settings: Settings,
    root_key: RootKey,
    args: argparse.Namespace,
    audited: Audited,
    change: Callable[[], Any],
    when: datetime,
) -> Any:
    """Make the change of the command ``args`` (``change``, begun at ``when``) between its
    intent and its event in the audit trail, whose digests ``root_key`` unwraps the signing
    key of; the change's output. Raises ValueError when the trail cannot take the intent
    (nothing changed) or the event (the change stands), and whatever ``change`` raises."""
    trail = _open(settings, root_key, "nothing was changed")
    try:
        return _Recording(trail, args, audited, when).run(change)
    finally:
        trail.stop()  # and the final digest


def record_made(
    settings: Settings,
    root_key: RootKey | None,
    args: argparse.Namespace,
    audited: Audited,
    output: Any,
    when: datetime,
) -> None:
    """Write the event of a change already made where there was no trail to take its intent
    before (``restore``, into an audit directory that had to be empty); ``root_key`` None:
    its segment gets no digest (the restored root key is not at hand). Raises ValueError
    when the trail cannot take it."""
    trail = _open(settings, root_key, f"{command_of(args)} was done, but its event is not in it")
    try:
        _Recording(trail, args, audited, when).write_made(output)
    finally:
        trail.stop()


def _open(settings: Settings, root_key: RootKey | None, outcome: str) -> AuditLog:
    """The command's audit writer, started; ValueError saying so and ``outcome`` when the
    audit directory or the signing key cannot be opened."""
    from strongroom.server.wiring import open_audit_log

    try:
        trail = open_audit_log(settings, root_key, prefill=False)
        trail.start()
    except (OSError, KeyStoreError) as exc:
        raise ValueError(f"{_unwritable(settings.audit_path, exc)}; {outcome}") from None
    return trail


def _unwritable(directory: Path, exc: Exception) -> str:
    return f"the audit trail in {directory} cannot be written ({_reason(exc)})"


class _Recording:
    """One command's intent and event: who, when, where, and the request id joining them."""

    def __init__(
        self, trail: AuditLog, args: argparse.Namespace, audited: Audited, when: datetime
    ) -> None:
        self.trail = trail
        self.args = args
        self.audited = audited
        self.when = when
        self.request_id = new_id()
        host = socket.gethostname()
        self.identity = operator_identity(_user(), host)
        self.source_ip = host
        self.user_agent = f"{_agent()} command/admin.{command_of(args).replace(' ', '.')}"

    def run(self, change: Callable[[], Any]) -> Any:
        self._write_intent()
        try:
            output = change()
        except KmsError as exc:
            self._write_refusal(exc.code, exc.message)
            raise
        except ValueError as exc:
            self._write_refusal(REFUSED, str(exc))
            raise
        try:
            self.write_made(output)
        except ValueError as exc:
            raise ValueError(
                f"{exc}: its intent, request {self.request_id}, stands alone in the trail "
                "(strongroom audit unmatched lists it)"
            ) from None
        return output

    def write_made(self, output: Any) -> None:
        try:
            self._write_event(self.audited.members(self.args, output), None, None)
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"{command_of(self.args)} was done, but its audit event could not be written "
                f"({_reason(exc)})"
            ) from None

    def _common(self) -> dict[str, Any]:
        """What the command's intent and event share."""
        return {
            "event_time": self.when,
            "event_name": self.audited.name,
            "region": REGION,
            "request_id": self.request_id,
            "source_ip": self.source_ip,
            "user_agent": self.user_agent,
            "user_identity": self.identity,
            "event_source": self.audited.source,
        }

    def _write_intent(self) -> None:
        intent = build_intent(
            **self._common(), request_parameters=self.audited.members(self.args, None).request
        )
        try:
            self.trail.write_now([intent])
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"{_unwritable(self.trail.directory, exc)}; nothing was changed"
            ) from None

    def _write_refusal(self, code: str, message: str) -> None:
        """The event of a refused command; when it cannot be written, the intent stays
        unmatched (the refusal is reported all the same)."""
        try:
            self._write_event(self.audited.members(self.args, None), code, message)
        except (OSError, ValueError) as exc:
            log.warning(
                "audit: the event of the refused %s could not be written (%s); its intent, "
                "request %s, stands alone in the trail",
                command_of(self.args),
                _reason(exc),
                self.request_id,
            )

    def _write_event(self, members: Members, code: str | None, message: str | None) -> None:
        event = build_event(
            **self._common(),
            request_parameters=members.request,
            response_elements=members.response,
            resources=list(members.resources),
            error_code=code,
            error_message=message,
        )
        if members.account is not None:
            event["recipientAccountId"] = members.account
        if members.details:
            event["additionalEventData"] = members.details
        self.trail.write_now([event])


def _reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _user() -> str:
    """The name of the effective user the command runs as (its uid when it has none)."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _agent() -> str:
    from strongroom.cli.main import version

    return f"strongroom-cli/{version()}"
