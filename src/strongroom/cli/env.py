"""``strongroom env``: the ``export`` lines that point AWS clients at this server."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    p = commands.add_parser(
        "env",
        help="print export lines for AWS clients",
        description="Print the export lines that point AWS clients (the AWS CLI, the SDKs, the "
        'Encryption SDK) at this server: eval "$(strongroom env)". They name the data '
        "directory's config and credentials files (written by the first start of strongroom "
        "serve), the profile strongroom, and AWS_ENDPOINT_URL_KMS.",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        help="data directory (default ./strongroom-data; STRONGROOM_DATA_DIR)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the lines; ValueError (one line, exit 2) when the data directory has no
    config or credentials file yet."""
    from strongroom.server.client_config import env_lines, read_ca_bundle, read_endpoint
    from strongroom.server.settings import load_settings
    from strongroom.server.wiring import config_path

    settings = load_settings(getattr(args, "config", None), data_dir=args.data_dir)
    config = config_path(settings)
    endpoint = read_endpoint(config) if config.is_file() else None
    if endpoint is None or not settings.credentials_path.is_file():
        raise ValueError(
            f"no AWS config and credentials in {settings.data_dir}: start strongroom serve "
            "with this data directory once first (or give --data-dir)"
        )
    ca_bundle = read_ca_bundle(config)
    for line in env_lines(config, settings.credentials_path, endpoint, ca_bundle):
        print(line)
    return 0
