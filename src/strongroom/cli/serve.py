"""``strongroom serve``: run the KMS endpoint."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from strongroom.cli.common import add_storage_options, settings_from


def register(commands: Any) -> None:
    p = commands.add_parser(
        "serve",
        help="run the server",
        description="Run the KMS endpoint. On first start: creates the data directory, the "
        "root key file, the database schema and an admin access key in DATA_DIR/credentials.",
    )
    p.add_argument("--host", help="address to listen on (default 127.0.0.1; STRONGROOM_HOST)")
    # --port and --workers are read and checked with the other settings, which name the
    # setting and its source in one line (argparse would print its usage too).
    p.add_argument(
        "--port", help="port to listen on, 0 for any free one (default 4599; STRONGROOM_PORT)"
    )
    p.add_argument("--workers", help="worker processes, 1 to 64 (default 1; STRONGROOM_WORKERS)")
    p.add_argument(
        "--dev",
        action="store_true",
        default=None,
        help="development mode: accept ANY well-formed SigV4 credentials as the "
        "account root (never in production)",
    )
    p.add_argument(
        "--seed",
        type=Path,
        metavar="FILE",
        help="YAML seed file: keys (fixed ids, optionally given material), aliases, tags and "
        "key policies to create or bring up to date, in one transaction, on every start "
        "before serving; a bad file stops the start (STRONGROOM_SEED; README 'Seeding')",
    )
    p.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="log level (default info)",
    )
    add_storage_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from strongroom.server.app import KmsApp
    from strongroom.server.wiring import build_runtime, prepare
    from strongroom.server.workers import server_class, supervise

    settings = settings_from(
        args,
        host=args.host,
        port=args.port,
        workers=args.workers,
        dev=args.dev,
        log_level=args.log_level,
        seed=args.seed,
    )
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    prepare(settings, seed=True)
    if settings.dev:
        print(
            "WARNING: strongroom is running with --dev: ANY well-formed SigV4 credentials are "
            f"accepted as the root of account {settings.account}. Never use this in production.",
            file=sys.stderr,
            flush=True,
        )
    print(
        f"strongroom: credentials in {settings.credentials_path} (profile strongroom)",
        file=sys.stderr,
        flush=True,
    )
    options: dict[str, Any] = dict(
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        loop="uvloop",
        http="httptools",
        # The client address is the socket's: X-Forwarded-For / Forwarded from a client on
        # 127.0.0.1 (uvicorn trusts those by default) would set aws:SourceIp and the audit
        # event's sourceIPAddress to whatever that client claims.
        proxy_headers=False,
        timeout_graceful_shutdown=5,
    )
    if settings.workers > 1:
        os.environ.update(settings.to_env())  # the workers' settings
        del options["host"], options["port"]  # each worker binds its own socket
        return supervise(settings.host, settings.port, settings.workers, options)
    server = server_class()(uvicorn.Config(KmsApp(build_runtime(settings)), **options))
    server.run()
    return 0 if server.started else 1
