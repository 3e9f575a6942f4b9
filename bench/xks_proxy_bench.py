#!/usr/bin/env python3
"""The bundled XKS proxy's own cost: wrk replays one signed Encrypt (or Decrypt) request
against ``strongroom xks-proxy --dev`` (SoftHSM2) at 1 and N connections; the proxy's CPU
comes from /proc/<pid>/stat (utime+stime of all its threads) over the run.

Prints req/s, p50, p99 and the proxy's CPU µs per request (what one request costs it on
one core; 1e6 / that is its ceiling on one core). The request is the XKS client's shape
(64-byte plaintext, 90-byte AAD, CDIV asked, requestMetadata with principal and key ARN),
signed once (SigV4 is good for 5 minutes, so keep ``--seconds`` times the runs under that).

    python3 bench/xks_proxy_bench.py                     # encrypt+decrypt at 1 and 64, ~45 s
    python3 bench/xks_proxy_bench.py --ops encrypt --connections 64 --seconds 10 \\
        --proxy-arg=--workers --proxy-arg=2 --json /tmp/p.json
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from kms_bench import start_xks_proxy, stop, wrk_script  # noqa: E402

from strongroom.auth import sigv4  # noqa: E402

HOST = "127.0.0.1"
PLAINTEXT = os.urandom(64)
AAD = os.urandom(90)
METADATA = {
    "kmsRequestId": "4112f4d6-db54-4af4-ae30-c55a22a8dfae",
    "kmsOperation": "Encrypt",
    "awsPrincipalArn": "arn:aws:iam::111122223333:user/Alice",
    "kmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
}
TICK = os.sysconf("SC_CLK_TCK")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """(user, system) seconds of ``pids`` (every thread), plus their reaped children."""
    user = system = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += (int(fields[11]) + int(fields[13])) / TICK
        system += (int(fields[12]) + int(fields[14])) / TICK
    return user, system


def _children(pid: int) -> list[int]:
    found = [pid]
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return found
    for child in text.split():
        found.extend(_children(int(child)))
    return found


def _signed(port: int, config: dict[str, Any], operation: str, body: bytes) -> dict[str, str]:
    path = f"{config['uri_prefix']}/kms/xks/v1/keys/foo/{operation}"
    amz_date = datetime.now(UTC).strftime(sigv4.AMZ_DATE_FORMAT)
    headers = {
        "host": f"{HOST}:{port}",
        "content-type": "application/json",
        "x-amz-date": amz_date,
    }
    request = sigv4.HttpRequest("POST", path, "", list(headers.items()), body)
    headers["authorization"] = sigv4.sign(
        request,
        access_key_id=config["access_key_id"],
        secret_access_key=config["secret_access_key"],
        region=config["region"],
        service="kms-xks-proxy",
        amz_date=amz_date,
    )
    headers["user-agent"] = "strongroom-xks-client"
    return headers


def _post(port: int, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers=headers)
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def _bodies(port: int, config: dict[str, Any]) -> dict[str, tuple[str, bytes]]:
    prefix = f"{config['uri_prefix']}/kms/xks/v1/keys/foo/"
    encrypt = json.dumps(
        {
            "requestMetadata": METADATA,
            "plaintext": _b64(PLAINTEXT),
            "encryptionAlgorithm": "AES_GCM",
            "additionalAuthenticatedData": _b64(AAD),
            "ciphertextDataIntegrityValueAlgorithm": "SHA_256",
        }
    ).encode()
    headers = _signed(port, config, "encrypt", encrypt)
    status, reply = _post(port, prefix + "encrypt", headers, encrypt)
    if status != 200:
        raise SystemExit(f"encrypt answered {status}: {reply[:300]!r}")
    sealed = json.loads(reply)
    decrypt = json.dumps(
        {
            "requestMetadata": dict(METADATA, kmsOperation="Decrypt"),
            "ciphertext": sealed["ciphertext"],
            "encryptionAlgorithm": "AES_GCM",
            "additionalAuthenticatedData": _b64(AAD),
            "initializationVector": sealed["initializationVector"],
            "authenticationTag": sealed["authenticationTag"],
        }
    ).encode()
    return {"encrypt": (prefix + "encrypt", encrypt), "decrypt": (prefix + "decrypt", decrypt)}


def run(
    port: int,
    pid: int,
    config: dict[str, Any],
    operation: str,
    path: str,
    body: bytes,
    connections: int,
    seconds: float,
    workdir: Path,
) -> dict[str, Any]:
    headers = _signed(port, config, operation, body)
    status, reply = _post(port, path, headers, body)
    if status != 200:
        raise SystemExit(f"{operation} answered {status}: {reply[:300]!r}")
    script = workdir / f"{operation}.lua"
    script.write_text(wrk_script({k: v for k, v in headers.items() if k != "host"}, body))
    url = f"http://{HOST}:{port}{path}"
    # warm-up: connections open, caches filled
    subprocess.run(
        ["wrk", "-t1", f"-c{connections}", "-d1s", "-s", str(script), url],
        capture_output=True,
        check=True,
    )
    pids = _children(pid)
    cpu0, wall0 = _cpu_seconds(pids), time.monotonic()
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    wall, cpu1 = time.monotonic() - wall0, _cpu_seconds(pids)
    cpu = sum(cpu1) - sum(cpu0)
    match = re.search(r"KMS_BENCH_JSON (\{.*\})", done.stdout)
    if not match:
        raise SystemExit(f"wrk: {done.stdout}\n{done.stderr}")
    data = json.loads(match.group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", done.stdout)
    requests = data["requests"]
    return {
        "operation": operation,
        "connections": connections,
        "requests": requests,
        "rps": round(requests / (data["duration_us"] / 1e6)),
        "p50_ms": data["p50_us"] / 1000,
        "p99_ms": data["p99_us"] / 1000,
        "proxy_cpu_us_per_request": round(cpu / requests * 1e6, 1),
        "proxy_system_us_per_request": round((cpu1[1] - cpu0[1]) / requests * 1e6, 1),
        "proxy_cores": round(cpu / wall, 2),
        "errors": int(non_2xx.group(1)) if non_2xx else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", default="1,64")
    parser.add_argument("--ops", default="encrypt,decrypt")
    parser.add_argument("--proxy-arg", action="append", default=[], help="extra proxy argument")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        server, config = start_xks_proxy(Path(tmp), "--log-level", "warning", *args.proxy_arg)
        port, proxy = server.port, server.proc
        try:
            bodies = _bodies(port, config)
            for operation in args.ops.split(","):
                path, body = bodies[operation]
                for n in [int(c) for c in args.connections.split(",")]:
                    row = run(
                        port, proxy.pid, config, operation, path, body, n, args.seconds, Path(tmp)
                    )
                    rows.append(row)
                    print(
                        f"{operation:8} c={n:3}  {row['rps']:6} req/s  p50 {row['p50_ms']:7.3f} ms"
                        f"  p99 {row['p99_ms']:7.3f} ms  proxy CPU "
                        f"{row['proxy_cpu_us_per_request']:6.1f} µs/req "
                        f"(system {row['proxy_system_us_per_request']:5.1f}) "
                        f"({row['proxy_cores']:.2f} cores)  non-2xx {row['errors']}",
                        flush=True,
                    )
            log = Path(config["request_log"])
        finally:
            stop(server)
        lines = log.read_text().count("\n") if log.exists() else 0
        print(f"request log: {lines} lines", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
