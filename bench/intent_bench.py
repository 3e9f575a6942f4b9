#!/usr/bin/env python3
"""What the audit intent costs a request that changes state: CreateKey (one intent, then its
event) against Encrypt (its event only, no intent), on two servers side by side, one
running the code ``--before`` names (a ``src`` directory without intents, e.g. main's
before the change) and one running ``--after`` (default: this checkout's ``src``).

One boto3 client per server, requests interleaved (A, B, B, A, ...) so that both see the
same load on the machine; each server has one worker and the settings' defaults (audit
fsync on). Prints, per server and operation, the client-side p50 / p90 latency and the
server CPU per request (the process group's utime + stime over the phase, divided by the
requests; the servers serve nothing else).

    python bench/intent_bench.py --before /path/to/main/src --requests 300
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from kms_bench import (  # noqa: E402  (bench/ is not a package)
    Server,
    start_strongroom,
    stop_all,
    strongroom_credentials,
)


def _client(server: Server, workdir: Path, name: str) -> Any:
    import boto3
    from botocore.config import Config

    key_id, secret = strongroom_credentials(workdir, name)
    return boto3.client(
        "kms",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 0}),
    )


def _call(client: Any, operation: str, key_id: str) -> float:
    started = time.perf_counter()
    if operation == "CreateKey":
        client.create_key(Description="bench")
    else:
        client.encrypt(KeyId=key_id, Plaintext=b"x" * 32)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="src directory, no intents")
    parser.add_argument("--after", type=Path, default=HERE.parent / "src", help="src directory")
    parser.add_argument("--requests", type=int, default=300, help="per server and operation")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="intent-bench-") as tmp:
        workdir = Path(tmp)
        try:
            servers = {
                name: start_strongroom(
                    workdir, 1, name=name, env={"PYTHONPATH": str(src.resolve())}
                )
                for name, src in (("before", args.before), ("after", args.after))
            }
            clients = {name: _client(s, workdir, name) for name, s in servers.items()}
            keys = {name: c.create_key()["KeyMetadata"]["KeyId"] for name, c in clients.items()}
            for operation in ("Encrypt", "CreateKey"):
                for name, client in clients.items():  # warm-up
                    for _ in range(20):
                        _call(client, operation, keys[name])
                times: dict[str, list[float]] = {name: [] for name in servers}
                cpu = {name: s.cpu_seconds() for name, s in servers.items()}
                order = list(servers)
                for _ in range(args.requests):
                    for name in order:
                        times[name].append(_call(clients[name], operation, keys[name]))
                    order.reverse()
                for name, server in servers.items():
                    spent = server.cpu_seconds() - cpu[name]
                    ordered = sorted(times[name])
                    results.setdefault(name, {})[operation] = {
                        "p50_ms": statistics.median(ordered) * 1e3,
                        "p90_ms": ordered[int(len(ordered) * 0.9)] * 1e3,
                        "cpu_ms_per_request": spent / args.requests * 1e3,
                    }
        finally:
            stop_all()
    print(f"{'server':8} {'operation':10} {'p50 ms':>8} {'p90 ms':>8} {'CPU ms/req':>11}")
    for name, operations in results.items():
        for operation, r in operations.items():
            print(
                f"{name:8} {operation:10} {r['p50_ms']:8.2f} {r['p90_ms']:8.2f} "
                f"{r['cpu_ms_per_request']:11.2f}"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
