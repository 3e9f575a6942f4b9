"""``strongroom admin fault``: inject AWS KMS errors and latency into a running server's
requests, for testing applications' retry paths (set, clear, list)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from strongroom.domain.errors import ValidationException
from strongroom.services.faults import (
    FAULT_ERRORS,
    MAX_LATENCY_MS,
    FaultSpec,
    check_account,
    check_fault,
    check_operation,
    clear_faults,
    list_faults,
    set_fault,
)

if TYPE_CHECKING:
    from strongroom.services.core import Core
    from strongroom.storage.ports import FaultRecord

Runner = Callable[["Core", argparse.Namespace], Any]

_ACCOUNT_HELP = "the caller's account the fault is for, 12 digits (default: every account)"
_OPERATION_HELP = "the KMS operation the fault is for, e.g. Encrypt (default: every operation)"


def register(sub: Any, with_core: Callable[[argparse.Namespace, Runner], int]) -> None:
    """Add ``fault set|clear|list`` to the admin subcommands ``sub``."""
    from strongroom.cli.common import add_storage_options

    top = sub.add_parser(
        "fault",
        help="inject AWS KMS errors and latency into requests (for testing retries)",
        description="Make requests fail with an AWS KMS error at a given rate, after a given "
        "latency, by caller account and operation. A running server applies a change within "
        "a second; failures it injects are marked faultInjected in the audit trail.",
    )
    actions = top.add_subparsers(dest="fault_command", required=True, metavar="ACTION")

    def action(
        name: str, help_text: str, run: Runner, check: Callable[[argparse.Namespace], None]
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = actions.add_parser(name, help=help_text, description=help_text)
        add_storage_options(p)

        def start(args: argparse.Namespace) -> int:
            try:
                check(args)  # before the data directory is opened: nothing is written
            except ValidationException as exc:
                raise ValueError(exc.message) from None
            # --account here is the fault's account, not the default account of the data
            # directory (which opening it would create).
            args.account = None
            return with_core(args, run)

        p.set_defaults(run=start)
        return p

    p = action(
        "set",
        "inject a fault: the requests of an account (or every account) to an operation (or "
        "every operation) wait --latency-ms, then fail with --error at --rate; replaces the "
        "fault of that account and operation. The most specific fault applies: account and "
        "operation, then account, then operation, then every request",
        _set,
        _check_set,
    )
    _scope_options(p)
    p.add_argument(
        "--error", required=True, choices=list(FAULT_ERRORS), help="the AWS error to return"
    )
    p.add_argument(
        "--rate",
        required=True,
        metavar="R",
        help="the share of requests that fail, from 0 to 1 (0: latency only)",
    )
    p.add_argument(
        "--latency-ms",
        dest="latency_ms",
        metavar="N",
        help=f"milliseconds each request waits first, 0 to {MAX_LATENCY_MS} (default 0)",
    )
    p = action(
        "clear",
        "remove faults: those of --account and of --operation when given ('*' names the "
        "fault of every account or every operation), every fault without them",
        _clear,
        _check_clear,
    )
    _scope_options(p)
    action("list", "list the faults", _list, lambda args: None)


def _scope_options(p: argparse.ArgumentParser) -> None:
    # add_storage_options has --account already (the data directory's default account):
    # here it names the fault's account.
    for option in p._actions:
        if option.dest == "account":
            option.help = _ACCOUNT_HELP
    p.add_argument("--operation", help=_OPERATION_HELP)


def _check_set(args: argparse.Namespace) -> None:
    args.fault = check_fault(
        account=args.account,
        operation=args.operation,
        error=args.error,
        rate=args.rate,
        latency_ms=args.latency_ms,
    )


def _check_clear(args: argparse.Namespace) -> None:
    args.fault_account = None if args.account is None else check_account(args.account)
    args.fault_operation = None if args.operation is None else check_operation(args.operation)


def _set(core: Core, args: argparse.Namespace) -> dict[str, Any]:
    spec: FaultSpec = args.fault
    return {"Fault": _shown(set_fault(core, spec))}


def _clear(core: Core, args: argparse.Namespace) -> dict[str, Any]:
    return {"Cleared": clear_faults(core, args.fault_account, args.fault_operation)}


def _list(core: Core, args: argparse.Namespace) -> dict[str, Any]:
    return {"Faults": [_shown(f) for f in list_faults(core.store)]}


def _shown(fault: FaultRecord) -> dict[str, Any]:
    return {
        "Account": fault.account_id,
        "Operation": fault.operation,
        "Error": fault.error_code,
        "Rate": fault.rate,
        "LatencyMs": fault.latency_ms,
        "Created": fault.created.isoformat(),
    }
