"""``strongroom admin quota list|set|reset``: the self-hosted quota increase. Values go to the
database; a running server applies them within a second (the change feed)."""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from strongroom.server.settings import ACCOUNT_ID

if TYPE_CHECKING:
    from strongroom.services.core import Core

# services.quotas is imported by the functions that use it: the command line of every
# strongroom command (``strongroom serve`` among them) is built with this module.
Runner = Callable[["Core", argparse.Namespace], Any]
DEFAULT_REGION = "us-east-1"


def register(sub: Any, with_core: Callable[[argparse.Namespace, Runner], int]) -> None:
    """Add ``quota list|set|reset`` to the admin subcommands ``sub``."""
    from strongroom.cli.common import add_storage_options

    top = sub.add_parser(
        "quota",
        help="show and adjust AWS KMS's request and resource quotas",
        description="AWS KMS's quotas by their Service Quotas names (README 'Quotas'). "
        "Without --account a value holds for every account that has none of its own.",
    )
    actions = top.add_subparsers(dest="quota_command", required=True, metavar="ACTION")

    def action(name: str, help_text: str, run: Runner) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = actions.add_parser(name, help=help_text, description=help_text)
        add_storage_options(p)
        for option in p._actions:  # --account names the quota's account here
            if option.dest == "account":
                option.help = "the account whose value this is (default: every account)"

        def start(args: argparse.Namespace) -> int:
            _check(args)  # before the data directory is opened (or made)
            return with_core(args, run)

        p.set_defaults(run=start)
        return p

    p = action(
        "list",
        "every quota: name, value, AWS's default, adjustable, and where the value comes from",
        _list,
    )
    p.add_argument(
        "--region",
        default=DEFAULT_REGION,
        help=f"the Region whose defaults to show (default {DEFAULT_REGION})",
    )
    p = action("set", "set an adjustable quota's value (requests per second, a count)", _set)
    p.add_argument(
        "name", metavar="NAME", help='e.g. "Cryptographic operations (symmetric) request rate"'
    )
    p.add_argument("value", metavar="VALUE", help="more than 0; request rates may be fractions")
    p = action("reset", "forget a quota's value: back to AWS's default", _reset)
    p.add_argument("name", metavar="NAME")


def _check(args: argparse.Namespace) -> None:
    """The quota's account (--account, else every account), its name and value, checked;
    --account is taken off the storage options (the data directory's account stays)."""
    from strongroom.services.quotas import EVERY_ACCOUNT, check_setting, find_quota

    account = args.account
    args.account = None
    if account is not None and not ACCOUNT_ID.fullmatch(account):
        raise ValueError(
            f"--account {account!r} is not an account id: an account id is 12 digits, "
            "e.g. 111122223333"
        )
    args.quota_account = account or EVERY_ACCOUNT
    if getattr(args, "value", None) is not None:
        args.number = _number(find_quota(args.name).name, args.value)
        check_setting(args.name, args.number)
    elif getattr(args, "name", None) is not None:
        find_quota(args.name)


def _number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"quota {name!r}: value {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"quota {name!r}: value {text!r} is not a finite number")
    return value


def _list(core: Core, args: argparse.Namespace) -> list[dict[str, Any]]:
    from strongroom.services.quotas import list_quotas

    core.quota_values.reload(core.store)
    account = args.quota_account
    return [
        {
            "Name": s.quota.name,
            "Kind": s.quota.kind.value,
            "Value": _shown(s.value),
            "Default": _shown(s.default),
            "Adjustable": s.quota.adjustable,
            "Source": s.source,
            "AppliesTo": list(s.quota.applies_to),
        }
        for s in list_quotas(core.quota_values, account, args.region)
    ]


def _set(core: Core, args: argparse.Namespace) -> dict[str, Any]:
    from strongroom.services.quotas import set_quota

    quota = set_quota(core.store, args.quota_account, args.name, args.number, time.time())
    return {"Name": quota.name, "Account": args.quota_account, "Value": _shown(args.number)}


def _reset(core: Core, args: argparse.Namespace) -> dict[str, Any]:
    from strongroom.services.quotas import reset_quota

    removed = reset_quota(core.store, args.quota_account, args.name, time.time())
    return {"Name": args.name, "Account": args.quota_account, "Reset": removed}


def _shown(value: float) -> int | float:
    """A whole value as an integer (5, not 5.0)."""
    return int(value) if value == int(value) else value
