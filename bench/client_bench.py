"""Envelope encryption through ``strongroom.client``: TOTAL bytes as messages of SIZE bytes
(default 1 GB as 10,000 messages of 100 KB), without data key caching (one GenerateDataKey
per message) and with it (one per ``--cache-max-messages`` messages), against a Strongroom
server started here; beside the machine's raw AES-256-GCM rate (pyca/cryptography AESGCM on
SIZE-byte chunks, one thread), the floor the Encryption SDK builds on.

Prints, for each run: messages, KMS calls by operation (counted by the client's botocore
event handler and checked against the server's audit trail), wall seconds, MB/s of
plaintext, and this process's CPU seconds.

    python3 bench/client_bench.py                        # 1 GB: ~several minutes per run
    python3 bench/client_bench.py --total 50MB           # quick
    python3 bench/client_bench.py --total 1GB --json /tmp/client_1gb.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import boto3
import kms_bench as kb
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.client import CacheSettings, Client

UNITS = {"KB": 1000, "MB": 1000**2, "GB": 1000**3, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
REGION = "us-east-1"


def size_arg(text: str) -> int:
    """``100KB``, ``1GB``, ``1GiB`` or a number of bytes."""
    for unit in sorted(UNITS, key=len, reverse=True):
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * UNITS[unit])
    return int(text)


def raw_aes_gcm(size: int, total: int) -> dict[str, float]:
    """AESGCM.encrypt of SIZE-byte chunks until TOTAL bytes (a fresh 96-bit nonce each)."""
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    chunk = os.urandom(size)
    count = max(total // size, 1)
    cpu0, t0 = time.process_time(), time.perf_counter()
    for i in range(count):
        aead.encrypt(i.to_bytes(12, "big"), chunk, None)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"chunks": count, "seconds": wall, "cpu_seconds": cpu, "mb_s": count * size / 1e6 / wall}


def run_client(
    server: kb.Server, creds: tuple[str, str], key_arn: str, size: int, count: int,
    cache: CacheSettings | None,
) -> dict[str, Any]:  # fmt: skip
    """Encrypt COUNT messages of SIZE bytes (one random buffer, each message under a fresh
    or cached data key); the messages are dropped, only their sizes kept."""
    import botocore.session

    session = botocore.session.Session()
    session.set_credentials(*creds)
    client = Client(key_arn, endpoint_url=server.url, region=REGION, cache=cache, session=session)
    plaintext = os.urandom(size)
    context = {"bench": "client"}
    client.encrypt(plaintext, context)  # warm: clients, connection pool
    warm_calls = sum(client.stats.calls.values())
    written = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    for _ in range(count):
        written += len(client.encrypt(plaintext, context))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    calls = dict(client.stats.calls)
    return {
        "messages": count,
        "message_bytes": size,
        "ciphertext_bytes": written,
        "kms_calls": sum(calls.values()) - warm_calls,
        "kms_calls_by_operation": calls,
        "retries": client.stats.retries,
        "seconds": wall,
        "cpu_seconds": cpu,
        "mb_s": count * size / 1e6 / wall,
        "messages_s": count / wall,
    }


def audit_count(workdir: Path, key_arn: str, event: str) -> int:
    """The server's audit trail: events named EVENT for the key."""
    out = subprocess.run(
        [sys.executable, "-m", "strongroom.cli.main", "audit", "events", "--data-dir",
         str(workdir / "strongroom-data"), "--key", key_arn, "--event-name", event,
         "--limit", "100000000"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return sum(1 for line in out.splitlines() if line.strip())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--total", type=size_arg, default=size_arg("1GB"), help="bytes (1GB)")
    p.add_argument("--size", type=size_arg, default=size_arg("100KB"), help="per message (100KB)")
    p.add_argument("--workers", type=int, default=1, help="server workers (1)")
    p.add_argument(
        "--cache-max-messages", type=int, default=1000, help="messages per cached data key"
    )
    p.add_argument("--only", choices=("cached", "uncached"), help="one of the two client runs")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)
    count = max(args.total // args.size, 1)
    results: dict[str, Any] = {
        "machine": kb.machine(),
        "total_bytes": count * args.size,
        "message_bytes": args.size,
        "messages": count,
    }
    results["raw_aes_gcm"] = raw = raw_aes_gcm(args.size, count * args.size)
    print(f"raw AES-256-GCM, {args.size:,} B chunks: {raw['mb_s']:,.0f} MB/s")
    workdir = Path(tempfile.mkdtemp(prefix="client-bench-"))
    server = kb.start_strongroom(workdir, args.workers)
    try:
        creds = kb.strongroom_credentials(workdir)
        kms = boto3.client("kms", endpoint_url=server.url, region_name=REGION,
                           aws_access_key_id=creds[0], aws_secret_access_key=creds[1])  # fmt: skip
        runs = [
            ("uncached", None),
            ("cached", CacheSettings(max_age=3600, max_messages=args.cache_max_messages)),
        ]
        for name, cache in runs:
            if args.only and args.only != name:
                continue
            key_arn = kms.create_key(Description=f"client bench {name}")["KeyMetadata"]["Arn"]
            other = kb.wait_quiet(30)  # cores other processes used just before
            cpu_before = server.cpu_seconds()
            run = run_client(server, creds, key_arn, args.size, count, cache)
            run["audit_generate_data_key"] = audit_count(workdir, key_arn, "GenerateDataKey")
            run["server_cpu_seconds"] = server.cpu_seconds() - cpu_before
            run["other_cores_before"] = other
            results[name] = run
            print(
                f"{name:9} {run['messages']:,} messages: {run['kms_calls']:,} KMS calls "
                f"({run['audit_generate_data_key']:,} GenerateDataKey in the audit trail, "
                f"warm-up included), {run['seconds']:.1f} s, {run['mb_s']:.1f} MB/s, "
                f"{run['messages_s']:.0f} messages/s, client CPU {run['cpu_seconds']:.1f} s"
            )
    finally:
        kb.stop_all()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
