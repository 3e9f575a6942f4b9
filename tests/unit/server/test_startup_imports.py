"""What a start imports: the fork server's preload (everything a worker has when it is
forked) and the command line ``strongroom serve`` builds before it starts the fork server
leave out what the first request does not need (bench/README "Session 10": each is a
share of the one second a start has)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

# Imported by the first request that needs them, never by a start.
NOT_AT_START = (
    "botocore.loaders",  # the models are read from botocore's data files directly
    "urllib3",
    "prometheus_client",  # the first scrape of /metrics
    "yaml",  # a seed file
    "regex",  # Parameter Store's AllowedPattern
    "cryptography.x509",  # custom key stores' trust anchors, --tls
    "sqlalchemy.dialects.postgresql",  # on SQLite
    "psycopg",  # on SQLite
    "xml.sax",
    "urllib.request",
    "http.server",
)
# What the command line of `strongroom serve` is built with imports no part of the server.
NOT_IN_THE_COMMAND_LINE = (
    "sqlalchemy",
    "strongroom.services.core",
    "strongroom.storage.ports",
    "strongroom.server.wiring",
    "uvicorn",
    "importlib.metadata",
)


def _imported_by(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_the_fork_server_preload_leaves_out_what_no_first_request_needs() -> None:
    imported = _imported_by("import strongroom.server.preload")
    assert "strongroom.server.app" in imported  # it does import the server
    assert sorted(imported & set(NOT_AT_START)) == []


def test_the_serve_command_line_is_built_without_the_server() -> None:
    imported = _imported_by(
        "from strongroom.cli.main import build_parser\n"
        "build_parser().parse_args(['serve', '--data-dir', '/nonexistent'])"
    )
    assert sorted(imported & set(NOT_IN_THE_COMMAND_LINE)) == []


def test_serve_imports_no_other_commands_module() -> None:
    argv = "['--config', 'serve', 'serve', '--data-dir', '/nonexistent']"  # a file named serve
    imported = _imported_by(
        "from strongroom.cli.main import build_parser, command_named\n"
        f"build_parser(command_named({argv})).parse_args({argv})"
    )
    assert "strongroom.cli.serve" in imported
    assert sorted(n for n in imported if n.startswith("strongroom.cli.")) == [
        "strongroom.cli.common",
        "strongroom.cli.main",
        "strongroom.cli.serve",
    ]
