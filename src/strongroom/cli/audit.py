"""``strongroom audit``: read, verify and export the audit trail, and print the public key
that its digests are signed with."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strongroom.audit.unmatched import DEFAULT_GRACE
from strongroom.cli.common import add_storage_options, settings_from
from strongroom.domain.errors import StorageError
from strongroom.domain.ids import is_key_id, key_arn, parse_arn
from strongroom.server.settings import Settings

if TYPE_CHECKING:
    from strongroom.audit.segments import Record

DEFAULT_LIMIT = 1000
FOLLOW_INTERVAL = 0.2  # seconds between two reads of the trail with --follow


def register(commands: Any) -> None:
    audit = commands.add_parser(
        "audit",
        help="read, verify or export the audit trail",
        description="Read, verify or export the audit trail of every request.",
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
    q.add_argument(
        "--key",
        help="events of one key: key id, key ARN, alias name (alias/...) or alias ARN; an "
        "alias stands for the key it names now (looked up in the database)",
    )
    q.add_argument(
        "--region",
        help="with --key KEY_ID or --key alias/NAME: that Region only (default: every Region)",
    )
    q.add_argument("--event-name", help="operation, e.g. Encrypt")
    q.add_argument("--principal", help="principal ARN")
    q.add_argument(
        "--fault-injected",
        dest="fault_injected",
        action="store_true",
        help="only the failures that fault injection made (strongroom admin fault), "
        'marked "additionalEventData": {"faultInjected": true}',
    )
    q.add_argument(
        "--intents",
        action="store_true",
        help="print the intent records too: written before each request that changes "
        'state runs, marked "recordType": "Intent" (not CloudTrail events); an intent '
        "whose requestID has no event is a request whose event could not be written",
    )
    many = q.add_mutually_exclusive_group()
    many.add_argument(
        "--limit",
        type=_count,
        help=f"the oldest N events at most (default {DEFAULT_LIMIT})",
        metavar="N",
    )
    many.add_argument("--tail", type=_count, help="the newest N events", metavar="N")
    q.add_argument(
        "--follow",
        action="store_true",
        help="then keep printing new events as servers write them, until Ctrl-C; "
        "begins with the newest --tail N events (none by default)",
    )
    q.set_defaults(run=_events)
    v = sub.add_parser(
        "verify",
        help="check the hash chains and signed digests of the trail",
        description="Check every segment's hash chain and every signed digest of the audit "
        "trail: a changed or removed line, a cut tail, a missing segment, a missing digest or "
        "a bad signature is named, and the exit status is 1.",
    )
    add_storage_options(v)
    v.add_argument(
        "--public-key",
        type=Path,
        action="append",
        metavar="PEM",
        help="trust only the public key(s) in this PEM file (from `strongroom audit "
        "public-key`, kept apart from the server); repeatable. Default: the keys in the "
        "audit directory's public-keys/",
    )
    v.set_defaults(run=_verify)
    u = sub.add_parser(
        "unmatched",
        help="list the intent records that no event follows (requests that may have "
        "changed state unrecorded)",
        description="List the intent records that no event follows: requests that change "
        "state whose event was never written, because the server was killed or failed "
        "between the change and its event. Each may have made its change: check the "
        "resource it names. An intent whose request was refused has an event (with its "
        "errorCode) and is not listed. Oldest first, one a line (time, requestID, "
        "operation, caller, resource, segment:line), then a summary; exit status 1 when "
        "any is listed.",
    )
    add_storage_options(u)
    u.add_argument(
        "--older-than",
        dest="older_than",
        type=_seconds,
        default=DEFAULT_GRACE,
        metavar="SECONDS",
        help="leave out the intents younger than this, whose requests may still be in "
        f"flight on a running server (default {DEFAULT_GRACE:g}; 0 on a stopped server)",
    )
    u.add_argument("--since", type=datetime.fromisoformat, help="ISO time, included")
    u.add_argument("--until", type=datetime.fromisoformat, help="ISO time, included")
    u.add_argument(
        "--json",
        action="store_true",
        help="print the intent records as JSON lines instead (as `audit events --intents` "
        "does), the summary on standard error",
    )
    u.set_defaults(run=_unmatched)
    k = sub.add_parser(
        "public-key",
        help="print the public key the digests are signed with (PEM)",
        description="Print the public key (PEM) that signs the audit digests now; keep a copy "
        "apart from the server and give it to `audit verify --public-key`.",
    )
    add_storage_options(k)
    k.add_argument(
        "--all", action="store_true", help="every public key that ever signed digests here"
    )
    k.set_defaults(run=_public_key)
    x = sub.add_parser(
        "export",
        help="write the trail as CloudTrail log files",
        description="Write the events as CloudTrail log files: gzip JSON objects with a "
        "Records array, at AWSLogs/<account>/CloudTrail/<region>/<YYYY>/<MM>/<DD>/ under "
        "--output. Segments exported whole are marked so that retention may remove them.",
    )
    add_storage_options(x)
    x.add_argument("--format", choices=["cloudtrail"], default="cloudtrail", help="cloudtrail")
    x.add_argument("--output", type=Path, required=True, metavar="DIR", help="where to write")
    x.add_argument("--since", type=datetime.fromisoformat, help="ISO time, included")
    x.add_argument("--until", type=datetime.fromisoformat, help="ISO time, included")
    x.set_defaults(run=_export)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of events (0 or more)")
    return value


def _events(args: argparse.Namespace) -> int:
    from strongroom.audit.trail import TrailReader

    if args.follow and args.limit is not None:
        raise ValueError(
            "--limit does not go with --follow: use --tail N to begin with the newest N events"
        )
    settings = settings_from(args)
    reader = TrailReader(audit_directory(settings), intents=args.intents)
    wanted = _Filter.of(args, settings)
    if not args.follow:
        found = wanted.select(reader.read())
        if args.tail is not None:
            _print(found[max(0, len(found) - args.tail) :])
        else:
            _print(found[: DEFAULT_LIMIT if args.limit is None else args.limit])
        return 0
    try:
        found = wanted.select(reader.read())
        _print(found[max(0, len(found) - (args.tail or 0)) :])
        while True:
            time.sleep(FOLLOW_INTERVAL)
            _print(wanted.select(reader.read()))
    except KeyboardInterrupt:  # Ctrl-C is how following ends
        return 0


def _print(events: list[dict[str, Any]]) -> None:
    for event in events:
        print(json.dumps(event, separators=(",", ":")))
    sys.stdout.flush()


@dataclass(frozen=True, slots=True)
class _Filter:
    """Which events ``audit events`` prints."""

    since: float | None
    until: float | None
    event_name: str | None
    principal: str | None
    key: Callable[[str], bool] | None  # whether a resource ARN names the key asked for
    fault_injected: bool = False

    @classmethod
    def of(cls, args: argparse.Namespace, settings: Settings) -> _Filter:
        return cls(
            since=None if args.since is None else _aware(args.since).timestamp(),
            until=None if args.until is None else _aware(args.until).timestamp(),
            event_name=args.event_name,
            principal=args.principal,
            key=None if args.key is None else _key_matcher(args.key, args.region, settings),
            fault_injected=args.fault_injected,
        )

    def select(self, records: list[Record]) -> list[dict[str, Any]]:
        """The events of ``records`` (in time order) that pass, in the same order."""
        return [e for r in records if self.passes(r.time, e := r.event())]

    def passes(self, when: float, event: dict[str, Any]) -> bool:
        identity = event.get("userIdentity") or {}
        key = self.key
        return (
            (self.since is None or when >= self.since)
            and (self.until is None or when <= self.until)
            and (self.event_name is None or event["eventName"] == self.event_name)
            and (self.principal is None or identity.get("arn") == self.principal)
            and (key is None or any(key(r["ARN"]) for r in event.get("resources", [])))
            and (not self.fault_injected or _injected(event))
        )


def _injected(event: dict[str, Any]) -> bool:
    """Whether ``event`` is of a failure that fault injection made."""
    return bool((event.get("additionalEventData") or {}).get("faultInjected"))


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _key_matcher(name: str, region: str | None, settings: Settings) -> Callable[[str], bool]:
    """Whether a resource ARN is the key ``name`` names, in any form the API accepts.

    A key ARN is that key; a key id is the key of that id in any account and Region (or in
    ``region``); an alias stands for the key it names now: an alias ARN's in its account
    and Region, ``alias/NAME``'s in the default account and in ``region`` or, without it,
    in every Region where the alias exists. Raises ValueError for anything else and for
    an alias that names no key."""
    arn = parse_arn(name) if name.startswith("arn:") else None
    if arn is not None and arn.kind == "key":
        return name.__eq__
    if arn is not None:
        return _alias_keys(settings, arn.account, arn.name, arn.region).__contains__
    if name.startswith("alias/"):
        return _alias_keys(settings, settings.account, name, region).__contains__
    if is_key_id(name):

        def is_the_key(resource: str) -> bool:
            named = parse_arn(resource)
            return (
                named is not None
                and named.kind == "key"
                and named.name == name
                and region in (None, named.region)
            )

        return is_the_key
    raise ValueError(f"--key {name}: not a key id, key ARN, alias name (alias/NAME) or alias ARN")


def _alias_keys(settings: Settings, account: str, name: str, region: str | None) -> frozenset[str]:
    """The ARNs of the keys alias ``name`` names in ``account`` (in ``region``, or in each
    Region where it exists), looked up in the database."""
    from strongroom.server.wiring import open_store

    if settings.database_url is None and not settings.sqlite_path.is_file():
        raise ValueError(
            f"no database at {settings.sqlite_path} to look {name} up in: is --data-dir "
            "right? (or give --key the key id or key ARN)"
        )
    store = open_store(settings)
    try:
        with store.transaction() as tx:
            if region is None:
                aliases = tx.aliases.in_every_region(account, name)
            else:
                alias = tx.aliases.get(account, region, name)
                aliases = [] if alias is None else [alias]
    except StorageError as exc:
        raise ValueError(f"cannot look {name} up in the database: {exc}") from None
    finally:
        store.close()
    if not aliases:
        where = "in any Region" if region is None else f"in {region}"
        raise ValueError(
            f"{name} names no key in account {account} {where}: is --account (or --region) "
            "right? A deleted alias names no key any more: give --key the key id or key ARN"
        )
    return frozenset(key_arn(a.region, a.account, a.target_key_id) for a in aliases)


def audit_directory(settings: Settings) -> Path:
    """The audit directory of ``settings``. Raises ValueError, saying what to check, when
    it (or the data directory it is in) does not exist."""
    if settings.audit_dir is None and not settings.data_dir.is_dir():
        raise ValueError(
            f"no data directory at {settings.data_dir}: is --data-dir (or "
            "STRONGROOM_DATA_DIR) right? (the server creates it on first start)"
        )
    directory = settings.audit_path
    if not directory.is_dir():
        option = "--data-dir" if settings.audit_dir is None else "the audit_dir setting"
        raise ValueError(
            f"no audit directory at {directory}: is {option} right? "
            "(the server writes it on first start)"
        )
    return directory


def _verify(args: argparse.Namespace) -> int:
    from strongroom.audit.signing import load_public_keys
    from strongroom.audit.verify import verify

    trusted = None
    for path in args.public_key or ():
        try:
            trusted = {**(trusted or {}), **load_public_keys(path.read_bytes())}
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise ValueError(f"--public-key {path}: {reason}") from None
    report = verify(audit_directory(settings_from(args)), trusted)
    for problem in report.problems:
        print(problem)
    removed = f", {report.removed} removed by retention" if report.removed else ""
    intents = f" (and {report.intents} intent records)" if report.intents else ""
    print(
        f"{report.events} events{intents} checked in {report.segments} segments{removed}, "
        f"{report.digests} digests, {len(report.problems)} problems"
    )
    return 1 if report.problems else 0


def _unmatched(args: argparse.Namespace) -> int:
    from strongroom.audit.unmatched import unmatched_intents

    directory = audit_directory(settings_from(args))
    scan = unmatched_intents(
        directory,
        now=time.time(),
        older_than=args.older_than,
        since=None if args.since is None else _aware(args.since).timestamp(),
        until=None if args.until is None else _aware(args.until).timestamp(),
        progress=_progress_line() if sys.stderr.isatty() else None,
    )
    for found in scan.unmatched:
        if args.json:
            print(json.dumps(found.intent, separators=(",", ":")))
        else:
            where = f"{found.record.chain}:{found.record.line}"
            print(
                f"{found.time} {found.request_id} {found.operation} {found.caller or '-'} "
                f"{found.resource or '-'} {where}"
            )
    recent = (
        f", {scan.recent} younger than {args.older_than:g} s left out (perhaps in flight)"
        if scan.recent
        else ""
    )
    print(
        f"{len(scan.unmatched)} unmatched of {scan.intents} intent records in "
        f"{scan.segments} segments{recent}",
        file=sys.stderr if args.json else sys.stdout,
    )
    return 1 if scan.unmatched else 0


def _progress_line() -> Callable[[int, int], None]:
    """Shows how far a long trail was read on the terminal, about once a second."""
    shown = 0.0

    def show(done: int, total: int) -> None:
        nonlocal shown
        now = time.monotonic()
        if now - shown >= 1.0 or done == total:
            shown = now
            end = "\n" if done == total else ""
            print(f"\rread {done} of {total} segments", end=end, file=sys.stderr, flush=True)

    return show


def _public_key(args: argparse.Namespace) -> int:
    from strongroom.audit.signing import current_public_key, public_keys, public_pem

    directory = audit_directory(settings_from(args))
    if args.all:
        for key in public_keys(directory).values():
            sys.stdout.write(public_pem(key).decode())
        return 0
    _, pem = current_public_key(directory)
    sys.stdout.write(pem.decode())
    return 0


def _export(args: argparse.Namespace) -> int:
    from strongroom.audit.export import export_cloudtrail

    settings = settings_from(args)
    summary = export_cloudtrail(
        audit_directory(settings),
        args.output,
        account=settings.account,
        since=None if args.since is None else _aware(args.since).timestamp(),
        until=None if args.until is None else _aware(args.until).timestamp(),
    )
    print(
        f"{summary.events} events in {len(summary.files)} CloudTrail log files under "
        f"{args.output}; {summary.segments_marked} segments marked exported"
    )
    return 0
