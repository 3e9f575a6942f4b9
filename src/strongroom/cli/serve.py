"""``strongroom serve``: run the KMS endpoint."""

from __future__ import annotations

import argparse
import errno
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strongroom.cli.common import add_storage_options, settings_from

if TYPE_CHECKING:
    from strongroom.server.tls import TlsFiles


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
    p.add_argument(
        "--workers",
        help="worker processes, 1 to 64 (default: one per core; STRONGROOM_WORKERS)",
    )
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
    p.add_argument(
        "--log-format",
        choices=["text", "json"],
        help="log lines as text (default) or one JSON object a line, with the request id of "
        "the request being served (STRONGROOM_LOG_FORMAT)",
    )
    p.add_argument(
        "--access-log",
        action="store_true",
        default=None,
        help="log a line per request: client, operation, status, error, time, request id "
        "(on at --log-level debug; STRONGROOM_ACCESS_LOG)",
    )
    p.add_argument(
        "--xks-ca-bundle",
        type=Path,
        metavar="PEM",
        help="PEM file of the certificate authorities to trust for external key store "
        "proxies at https:// endpoints (default: the system's; STRONGROOM_XKS_CA_BUNDLE)",
    )
    p.add_argument(
        "--request-quotas",
        metavar="on|off",
        help="AWS KMS's request quotas: a request over a quota's rate gets "
        "ThrottlingException (default on, as in AWS; STRONGROOM_REQUEST_QUOTAS; README 'Quotas')",
    )
    p.add_argument(
        "--quota-sharing",
        metavar="MODE",
        help="how worker processes and nodes share a request quota: auto (the default), "
        "local, lease or split (STRONGROOM_QUOTA_SHARING; bench/README 'Session 8')",
    )
    p.add_argument(
        "--tls",
        action="store_true",
        default=None,
        help="serve https; with --dev and no --tls-cert, on a certificate generated in "
        "DATA_DIR/tls whose CA (DATA_DIR/tls/ca.pem) clients trust (STRONGROOM_TLS; "
        "README 'TLS')",
    )
    p.add_argument(
        "--tls-cert",
        type=Path,
        metavar="FILE",
        help="serve https with this PEM certificate (the server's first, then the chain); "
        "needs --tls-key (STRONGROOM_TLS_CERT)",
    )
    p.add_argument(
        "--tls-key",
        type=Path,
        metavar="FILE",
        help="the certificate's private key, PEM, unencrypted (STRONGROOM_TLS_KEY)",
    )
    p.add_argument(
        "--tls-ca-bundle",
        type=Path,
        metavar="FILE",
        help="the PEM CA bundle the AWS config file in the data directory tells clients to "
        "trust (default: the generated CA with --dev; else the system's; "
        "STRONGROOM_TLS_CA_BUNDLE)",
    )
    add_storage_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Start in an order that writes nothing before every check passed: the settings, the
    port (bound now, so a busy one fails first), then ``prepare`` (data directory,
    database, root key; only then the files it makes), then serve."""
    from strongroom.server.workers import prestart_workers, server_class, supervise

    settings = settings_from(
        args,
        host=args.host,
        port=args.port,
        workers=args.workers,
        dev=args.dev,
        log_level=args.log_level,
        log_format=args.log_format,
        seed=args.seed,
        access_log=args.access_log,
        xks_ca_bundle=args.xks_ca_bundle,
        request_quotas=args.request_quotas,
        quota_sharing=args.quota_sharing,
        tls=args.tls,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_ca_bundle=args.tls_ca_bundle,
    )
    if settings.workers > 1:  # the workers' parent imports the server while this one checks
        prestart_workers("sqlite" if settings.database_url is None else "postgresql")
    # Only what the checks and ``prepare`` need: a supervisor of workers never imports the
    # app or uvicorn (the fork server has them; a single server imports them below).
    from strongroom.server import tls
    from strongroom.server.client_config import endpoint_url
    from strongroom.server.logs import configure_logging
    from strongroom.server.wiring import config_path, prepare

    configure_logging(settings.log_level, settings.log_format)
    tls.check(settings)
    sock = _listen(settings.host, settings.port, settings.workers)
    try:
        port = sock.getsockname()[1]
        https = tls.wanted(settings)
        endpoint = endpoint_url(settings.host, port, "https" if https else "http")
        prepare(settings, seed=True, endpoint=endpoint, ca_bundle=tls.ca_bundle(settings))
        served = tls.files(settings)
    except BaseException:
        sock.close()
        raise
    if settings.dev:
        print(
            "WARNING: strongroom is running with --dev: ANY well-formed SigV4 credentials are "
            f"accepted as the root of account {settings.account}. Never use this in production.",
            file=sys.stderr,
            flush=True,
        )
    _say_where_credentials_are(settings.credentials_path, config_path(settings))
    _say_how_clients_trust(endpoint, served)
    options: dict[str, Any] = dict(
        host=settings.host,
        port=port,
        log_level=settings.log_level,
        access_log=False,
        loop="uvloop",
        http="httptools",
        # The client address is the socket's: X-Forwarded-For / Forwarded from a client on
        # 127.0.0.1 (uvicorn trusts those by default) would set aws:SourceIp and the audit
        # event's sourceIPAddress to whatever that client claims.
        proxy_headers=False,
        timeout_graceful_shutdown=5,
        **tls.uvicorn_options(served),
    )
    if settings.log_format == "json":  # uvicorn's records go to the root logger's handler
        options["log_config"] = None
    if settings.workers > 1:
        sock.close()  # it only held the port: each worker binds its own socket
        del options["host"], options["port"]
        env = settings.to_env()  # the workers' settings
        return supervise(settings.host, port, settings.workers, options, env, https=https)
    import uvicorn

    from strongroom.server.app import KmsApp
    from strongroom.server.wiring import build_runtime

    server = server_class()(uvicorn.Config(KmsApp(build_runtime(settings)), **options))
    server.run(sockets=[sock])
    return 0 if server.started else 1


def _listen(host: str, port: int, workers: int) -> socket.socket:
    """A socket bound to (host, port), before anything is written: the listening socket of
    a single server, or what holds the port for the workers' own sockets. StartError when
    the address is in use or cannot be bound."""
    from strongroom.server.startup import StartError
    from strongroom.server.workers import listening_socket

    try:
        return listening_socket(host, port, reuse_port=False)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        hint = (
            "stop the server that uses it or choose another --port"
            if exc.errno == errno.EADDRINUSE
            else "check --host and --port"
        )
        raise StartError(f"cannot listen on {host}:{port}: {reason}; {hint}") from None


def _say_where_credentials_are(credentials: Path, config: Path) -> None:
    if credentials.exists():
        said = f"credentials in {credentials} (profile strongroom)"
    else:
        said = (
            f"no credentials in {credentials}: this database was made by another server; use "
            "its credentials file, or strongroom admin create-access-key"
        )
    print(f"strongroom: {said}", file=sys.stderr, flush=True)
    if config.exists():
        print(
            f'strongroom: AWS config in {config}: eval "$(strongroom env --data-dir '
            f'{config.parent})" points AWS clients here',
            file=sys.stderr,
            flush=True,
        )


def _say_how_clients_trust(endpoint: str, served: TlsFiles | None) -> None:
    """Over https, where the CA bundle is and how each client is told to trust it."""
    if served is None:
        return
    if served.ca_bundle is None:
        print(
            f"strongroom: serving {endpoint} with the certificate {served.cert}",
            file=sys.stderr,
            flush=True,
        )
        return
    print(
        f"strongroom: serving {endpoint}; clients trust the CA in {served.ca_bundle}: "
        f"AWS_CA_BUNDLE={served.ca_bundle} (boto3, the AWS CLI), "
        f"NODE_EXTRA_CA_CERTS={served.ca_bundle} (the JavaScript SDK)",
        file=sys.stderr,
        flush=True,
    )
