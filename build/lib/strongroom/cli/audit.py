"""``strongroom audit``: read and verify the audit trail."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from strongroom.cli.common import add_storage_options, settings_from


def register(commands: Any) -> None:
    audit = commands.add_parser(
        "audit",
        help="read or verify the audit trail",
        description="Read or verify the audit trail of every request.",
    )
    sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    q = sub.add_parser(
        "events",
        help="print events as JSON lines, oldest first",
        description="Print audit events as JSON lines, oldest first.",
    )
    add_storage_options(q)
    q.add_argument(
        "--since", type=datetime.fromisoformat, help="ISO time, e.g. 2026-11-28T10:00:00+00:00"
    )
    q.add_argument("--until", type=datetime.fromisoformat, help="ISO time")
    q.add_argument("--key", help="key ARN")
    q.add_argument("--event-name", help="operation, e.g. Encrypt")
    q.add_argument("--principal", help="principal ARN")
    q.add_argument(
        "--limit", type=int, default=1000, help="at most this many events (default 1000)"
    )
    q.set_defaults(run=_events)
    v = sub.add_parser(
        "verify",
        help="check every hash chain of the trail",
        description="Check every hash chain of the audit trail; exit 1 on a break.",
    )
    add_storage_options(v)
    v.set_defaults(run=_verify)


def _events(args: argparse.Namespace) -> int:
    from strongroom.audit.log import read_segment, segments

    settings = settings_from(args)
    matches = []
    for path in segments(settings.audit_path):
        for record in read_segment(path):
            event = record.event()
            if _matches(record.time, event, args):
                matches.append((record.time, event))
    matches.sort(key=lambda m: m[0])  # stable: each segment is already in order
    for _, event in matches[: args.limit]:
        print(json.dumps(event, separators=(",", ":")))
    return 0


def _matches(when: float, event: dict[str, Any], args: argparse.Namespace) -> bool:
    identity = event.get("userIdentity") or {}
    return (
        (args.since is None or when >= _aware(args.since).timestamp())
        and (args.until is None or when <= _aware(args.until).timestamp())
        and (args.event_name is None or event["eventName"] == args.event_name)
        and (args.principal is None or identity.get("arn") == args.principal)
        and (args.key is None or any(r["ARN"] == args.key for r in event.get("resources", [])))
    )


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _verify(args: argparse.Namespace) -> int:
    from strongroom.audit.log import verify_trail

    count, problems = verify_trail(settings_from(args).audit_path)
    for problem in problems:
        print(problem)
    print(f"{count} events checked, {len(problems)} problems")
    return 1 if problems else 0
