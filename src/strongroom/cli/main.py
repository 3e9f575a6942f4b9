"""The ``strongroom`` command: serve, admin, audit, env, xks-proxy, encrypt, decrypt."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Each command's module (strongroom.cli.<module>) registers its parser; `strongroom --help`
# lists them in this order.
_COMMANDS = {
    "serve": "serve",
    "admin": "admin",
    "audit": "audit",
    "env": "env",
    "xks-proxy": "xks_proxy",
    "encrypt": "envelope",
    "decrypt": "envelope",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser: every command's, or with ``command`` (one of
    ``_COMMANDS``) that command's alone, which parses that command's arguments as the
    whole parser does without importing the other commands' modules (~0.04 s CPU of
    ``strongroom serve``'s start, before it starts the workers' fork server)."""
    parser = argparse.ArgumentParser(
        prog="strongroom",
        description="A self-hosted key management service that speaks the AWS KMS API.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="TOML file of settings (also STRONGROOM_CONFIG); may follow the command too",
    )
    parser.add_argument("--version", action=_VersionAction)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = [_COMMANDS[command]] if command in _COMMANDS else dict.fromkeys(_COMMANDS.values())
    for module in modules:
        importlib.import_module(f"strongroom.cli.{module}").register(commands)
    return parser


def command_named(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names, as the parser finds it (the first argument that is not
    an option, --config's value skipped), or None when ``argv`` asks for help or the
    version, names no command, or has an option the parser must judge first."""
    args = iter(argv)
    for arg in args:
        if arg == "--config":
            next(args, None)
        elif arg.startswith("--config="):
            continue
        elif arg.startswith("-"):
            return None
        else:
            return arg if arg in _COMMANDS else None
    return None


class _VersionAction(argparse._VersionAction):
    """argparse's ``--version``, the version looked up when asked for: reading the installed
    package's metadata imports ``importlib.metadata`` and walks ``sys.path`` (~0.015 s of
    every command, ``strongroom serve``'s start among them)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        self.version = f"strongroom {version()}"
        super().__call__(parser, *args, **kwargs)


def version() -> str:
    """The installed package's version (its metadata), or "unknown" when it is run from a
    source tree that was never installed."""
    import importlib.metadata

    try:
        return importlib.metadata.version("strongroom")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(command_named(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except ValueError as exc:
        print(f"strongroom: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
