"""``strongroom xks-proxy``: the bundled XKS proxy (AWS External Key Store Proxy API v1)."""

from __future__ import annotations

import argparse
import logging
import socket
import ssl
import sys
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    p = commands.add_parser(
        "xks-proxy",
        help="serve the XKS Proxy API from a PKCS#11 token",
        description="Serve the AWS XKS Proxy API v1 (POST [/<prefix>]/kms/xks/v1/keys/{keyId}/"
        "metadata|encrypt|decrypt and /kms/xks/v1/health) with keys kept in a PKCS#11 token. "
        "With --dev, a SoftHSM2 token, four keys (foo, encrypt-only, decrypt-only, impotent) "
        "and random credentials are created under --data-dir on first start and written to "
        "DATA_DIR/xks-proxy.json (mode 0600).",
    )
    p.add_argument(
        "--dev",
        action="store_true",
        help="trial mode: SoftHSM2 token, keys and credentials under --data-dir "
        "(instead of --config)",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        help="the proxy's TOML configuration file (token, URI prefixes, credentials, keys)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8443, help="port to listen on (default 8443)")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=Path("strongroom-xks-data"),
        help="data directory of --dev (default ./strongroom-xks-data)",
    )
    p.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="server log level (default info)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Bind the port first (a busy port fails before anything is written), prepare the data
    directory, then serve."""
    config_file: Path | None = getattr(args, "config", None)
    if args.dev == (config_file is not None):
        raise ValueError("xks-proxy: give either --dev or --config FILE")
    import uvicorn

    from strongroom.cli.main import version
    from strongroom.domain.errors import KeyStoreError
    from strongroom.xks_proxy import config as file_config
    from strongroom.xks_proxy import dev
    from strongroom.xks_proxy.app import XksProxyApp
    from strongroom.xks_proxy.http import JoinedWritesProtocol

    logging.basicConfig(level=args.log_level.upper())
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as e:
        sock.close()
        raise ValueError(f"xks-proxy: cannot listen on {args.host}:{args.port}: {e}") from None
    try:
        tls: dict[str, Any] = {}
        if args.dev:
            config = dev.build(args.data_dir, version=version())
        else:
            assert config_file is not None
            loaded = file_config.load(config_file)
            config = file_config.build(loaded, version=version())
            if loaded.tls is not None:
                tls = dict(
                    ssl_certfile=str(loaded.tls.cert_file), ssl_keyfile=str(loaded.tls.key_file)
                )
                if loaded.tls.client_ca_file is not None:
                    tls.update(
                        ssl_ca_certs=str(loaded.tls.client_ca_file), ssl_cert_reqs=ssl.CERT_REQUIRED
                    )
    except KeyStoreError as e:  # module, token or PIN: one line, exit 2
        sock.close()
        raise ValueError(f"xks-proxy: {e}") from None
    except BaseException:
        sock.close()
        raise
    port = sock.getsockname()[1]
    where = args.data_dir / dev.CONFIG_NAME if args.dev else config_file
    print(
        f"strongroom xks-proxy on {'https' if tls else 'http'}://{args.host}:{port}; "
        f"URI prefixes, credentials and keys in {where}",
        file=sys.stderr,
        flush=True,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            XksProxyApp(config),
            log_level=args.log_level,
            loop="uvloop",
            http=JoinedWritesProtocol,
            access_log=False,
            proxy_headers=False,
            timeout_graceful_shutdown=5,
            **tls,
        )
    )
    server.run(sockets=[sock])
    return 0 if server.started else 1
