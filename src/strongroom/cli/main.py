"""The ``strongroom`` command: serve, admin, audit, env, xks-proxy, encrypt, decrypt."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from strongroom.cli import admin, audit, env, envelope, serve, xks_proxy


def build_parser() -> argparse.ArgumentParser:
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
    serve.register(commands)
    admin.register(commands)
    audit.register(commands)
    env.register(commands)
    xks_proxy.register(commands)
    envelope.register(commands)
    return parser


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
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except ValueError as exc:
        print(f"strongroom: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
