"""``strongroom encrypt`` and ``strongroom decrypt``: envelope encryption of files and of
stdin to stdout, in the AWS Encryption SDK message format, through ``strongroom.client``."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

ENVIRONMENT = (
    "The endpoint, Region and credentials come from the AWS environment and profile, as for "
    "any AWS tool: AWS_ENDPOINT_URL_KMS or AWS_ENDPOINT_URL (or the profile's endpoint_url), "
    "AWS_REGION or AWS_DEFAULT_REGION (or the profile's region), AWS_PROFILE, "
    'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_CONFIG_FILE; eval "$(strongroom env)" '
    "sets them for a local server. Throttled calls are retried by botocore (standard mode, "
    "10 attempts, unless AWS_RETRY_MODE/AWS_MAX_ATTEMPTS or the options say otherwise) and "
    "reported on stderr."
)
# The SDK reserves this prefix for its own pairs (the signing key, "aws-crypto-public-key").
RESERVED_PREFIX = "aws-crypto-"


def register(commands: Any) -> None:
    e = commands.add_parser(
        "encrypt",
        help="encrypt a file or stdin under a KMS key (AWS Encryption SDK format)",
        description="Envelope-encrypt INPUT (default stdin) to OUTPUT (default stdout) under "
        "a KMS key, as an AWS Encryption SDK message: a fresh data key from GenerateDataKey "
        "(or the data key cache), AES-256-GCM with key commitment, signed with ECDSA P-384, "
        "in constant memory whatever the size. The SDKs and aws-encryption-cli decrypt it. "
        + ENVIRONMENT,
    )
    e.add_argument(
        "--key-id",
        required=True,
        help="the KMS key: key id, key ARN, alias name (alias/NAME) or alias ARN",
    )
    _add_common(e, "encryption context pair, stored in the message and bound to it (repeat)")
    e.set_defaults(run=run_encrypt)

    d = commands.add_parser(
        "decrypt",
        help="decrypt an AWS Encryption SDK message from a file or stdin",
        description="Decrypt an AWS Encryption SDK message from INPUT (default stdin) to "
        "OUTPUT (default stdout), in constant memory; the data key is decrypted with the KMS "
        "key the message names (only with --key-id when given). A file OUTPUT appears only "
        "when the whole message decrypted and verified. " + ENVIRONMENT,
    )
    d.add_argument(
        "--key-id",
        help="decrypt only with this KMS key (key id, key ARN, alias name or alias ARN)",
    )
    _add_common(d, "a pair the message's encryption context must contain (repeat)")
    d.set_defaults(run=run_decrypt)


def _add_common(p: argparse.ArgumentParser, context_help: str) -> None:
    p.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=context_help,
    )
    p.add_argument("--input", type=Path, help="file to read (default: stdin)")
    p.add_argument("--output", type=Path, help="file to write (default: stdout)")
    kms = p.add_argument_group("KMS")
    kms.add_argument("--endpoint-url", help="KMS endpoint (default: the AWS environment's)")
    kms.add_argument("--region", help="AWS Region (default: the AWS environment's)")
    kms.add_argument("--profile", help="AWS profile (default: AWS_PROFILE)")
    kms.add_argument(
        "--retry-mode",
        choices=("standard", "adaptive"),
        help="botocore retry mode (default: AWS_RETRY_MODE, else standard)",
    )
    kms.add_argument(
        "--max-attempts",
        type=_positive_int,
        help="attempts per KMS call, the first included (default: AWS_MAX_ATTEMPTS, else 10)",
    )
    cache = p.add_argument_group(
        "data key cache",
        "Reuse data keys through the SDK's caching materials manager; off unless one of "
        "these is given. A data key is reused until the first limit is reached. Only input "
        "of known size (a file) is cached.",
    )
    cache.add_argument(
        "--cache-max-age",
        type=float,
        metavar="SECONDS",
        help="seconds a data key is reused (default 300)",
    )
    cache.add_argument(
        "--cache-max-messages",
        type=_positive_int,
        metavar="N",
        help="messages per data key (default 2**32)",
    )
    cache.add_argument(
        "--cache-max-bytes",
        type=_positive_int,
        metavar="N",
        help="plaintext bytes per data key (default 2**63-1)",
    )
    cache.add_argument(
        "--cache-capacity",
        type=_positive_int,
        metavar="N",
        help="entries of the local cache (default 100)",
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_context(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` pairs as a dict; ValueError naming the pair that is malformed."""
    context: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--context {pair!r}: expected KEY=VALUE with a non-empty KEY")
        if key.startswith(RESERVED_PREFIX):
            raise ValueError(
                f"--context {pair!r}: keys beginning {RESERVED_PREFIX!r} are reserved for the "
                "AWS Encryption SDK"
            )
        if key in context:
            raise ValueError(f"--context {pair!r}: key {key!r} is given twice")
        context[key] = value
    return context


def _client(args: argparse.Namespace) -> Any:
    from strongroom.client import CacheSettings, Client, RetrySettings

    limits = {
        "max_age": args.cache_max_age,
        "max_messages": args.cache_max_messages,
        "max_bytes": args.cache_max_bytes,
        "capacity": args.cache_capacity,
    }
    given = {name: value for name, value in limits.items() if value is not None}
    return Client(
        args.key_id,
        endpoint_url=args.endpoint_url,
        region=args.region,
        profile=args.profile,
        cache=CacheSettings(**given) if given else None,
        retries=RetrySettings(mode=args.retry_mode, max_attempts=args.max_attempts),
    )


def run_encrypt(args: argparse.Namespace) -> int:
    return _run(args, "encrypt")


def run_decrypt(args: argparse.Namespace) -> int:
    return _run(args, "decrypt")


def _run(args: argparse.Namespace, action: str) -> int:
    """Exit 0 on success; 1 with one line on stderr when the message could not be made or
    read (no output file is left behind); ValueError (exit 2) for a bad option."""
    try:
        from strongroom.client import ClientError
    except ImportError as exc:  # the extra is not installed
        raise ValueError(
            f"strongroom {action} needs the client extra: pip install 'strongroom[client]' ({exc})"
        ) from exc
    context = parse_context(args.context)
    client = _client(args)
    try:
        with (
            _quiet_sdk_log(),
            _source(args.input) as (source, size),
            _destination(args.output) as destination,
            _progress(size) as progress,
        ):
            if action == "encrypt":
                client.encrypt_stream(source, destination, context, size=size, progress=progress)
            else:
                client.decrypt_stream(source, destination, context, progress=progress)
    except (ClientError, OSError) as exc:
        _report_retries(client, action)
        print(f"strongroom {action}: {exc}", file=sys.stderr)
        return 1
    _report_retries(client, action)
    return 0


@contextlib.contextmanager
def _quiet_sdk_log() -> Iterator[None]:
    """The SDK logs each KMS failure with its traceback; this command says it in one line.
    (Restored afterwards: ``main`` may run inside another program.)"""
    log = logging.getLogger("aws_encryption_sdk")
    handler = logging.NullHandler()
    propagate = log.propagate
    log.addHandler(handler)
    log.propagate = False
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.propagate = propagate


def _report_retries(client: Any, action: str) -> None:
    report = client.stats.retry_report()
    if report:
        print(f"strongroom {action}: {report}", file=sys.stderr)


@contextlib.contextmanager
def _source(path: Path | None) -> Iterator[tuple[IO[bytes], int | None]]:
    """The input and its size when it is a regular file (for the cache and the bar)."""
    if path is None:
        stream: IO[bytes] = sys.stdin.buffer
        yield stream, _regular_size(stream)
        return
    with path.open("rb") as f:
        yield f, _regular_size(f)


def _regular_size(f: IO[bytes]) -> int | None:
    try:
        st = os.fstat(f.fileno())
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return st.st_size - f.tell() if f.seekable() else None


@contextlib.contextmanager
def _destination(path: Path | None) -> Iterator[IO[bytes]]:
    """stdout, or a temporary file beside ``path`` renamed to it only on success (and
    removed on failure): a failed run leaves no partial output."""
    if path is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    directory = path.resolve().parent
    fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


@contextlib.contextmanager
def _progress(total: int | None) -> Iterator[Any]:
    """A progress bar on stderr when it is a terminal and the input size is known."""
    if total is None or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    with tqdm(
        total=total, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr, leave=False
    ) as bar:
        yield bar.update
        bar.refresh()  # the last updates may fall within tqdm's redraw interval: show the end
