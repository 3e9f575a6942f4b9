"""``strongroom audit``: read and verify the audit trail."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
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


def _store(args: argparse.Namespace) -> Any:
    from strongroom.server.wiring import open_store

    store = open_store(settings_from(args))
    store.migrate()
    return store


def _events(args: argparse.Namespace) -> int:
    store = _store(args)
    with store.transaction() as tx:
        rows = tx.query_audit(
            start=args.since.timestamp() if args.since else None,
            end=args.until.timestamp() if args.until else None,
            key_arn=args.key,
            event_name=args.event_name,
            principal_arn=args.principal,
            limit=args.limit,
        )
    for row in rows:
        print(json.dumps(json.loads(row.body), separators=(",", ":")))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from strongroom.audit.writer import verify_chains

    count, problems = verify_chains(_store(args))
    for problem in problems:
        print(problem)
    print(f"{count} events checked, {len(problems)} problems")
    return 1 if problems else 0
