"""The XKS client's own cost: XksClient.encrypt in a tight loop, on 1 thread and on N threads
sharing one client, against the bundled proxy (``strongroom xks-proxy --dev``, SoftHSM2) and
against an instant peer (a canned, valid encrypt answer from a tiny asyncio server in
another process), so that what the client spends shows apart from what the proxy spends.

Prints calls/s, µs per call (wall: one thread's latency; CPU: this process's user+system
time per call, i.e. what the KMS server pays for each XKS call), p50 and p99 per call.

    python3 bench/xks_client_bench.py                  # ~30 s
    python3 bench/xks_client_bench.py --seconds 3 --threads 1,16,64 --json /tmp/xks.json
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from kms_bench import free_port, start_xks_proxy, stop_all  # noqa: E402

from strongroom.keystores.xks_client import XksCall, XksClient, XksEndpoint  # noqa: E402

PLAINTEXT = os.urandom(64)  # the KMS's own ciphertext of a 32-byte data key is about this long
AAD = os.urandom(90)  # the blob header and an encryption context
CALL = XksCall(
    "4112f4d6-db54-4af4-ae30-c55a22a8dfae",
    "Encrypt",
    "arn:aws:iam::111122223333:user/Alice",
    "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
)

# A peer that answers every request at once with a valid encrypt answer for PLAINTEXT/AAD.
_INSTANT = """
import asyncio, sys
answer = sys.stdin.buffer.read()
async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\\r\\n\\r\\n")
            length = 0
            for line in head.split(b"\\r\\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            writer.write(answer)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]), backlog=256)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""


def _wait(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server on {port} exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def _instant_answer() -> bytes:
    iv, tag, ciphertext = os.urandom(12), os.urandom(16), os.urandom(len(PLAINTEXT))

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    body = json.dumps(
        {
            "ciphertext": b64(ciphertext),
            "initializationVector": b64(iv),
            "authenticationTag": b64(tag),
            "ciphertextDataIntegrityValue": b64(
                hashlib.sha256(AAD + iv + ciphertext + tag).digest()
            ),
        }
    ).encode()
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n" % len(body)
    ) + body


def run(client: XksClient, threads: int, seconds: float) -> dict[str, Any]:
    for _ in range(max(threads, 20)):  # warm: connections, caches
        client.encrypt("foo", PLAINTEXT, AAD, CALL)
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []
    stop = time.monotonic() + seconds
    start_line = threading.Barrier(threads + 1)

    def work(mine: list[float]) -> None:
        start_line.wait()
        try:
            while True:
                began = time.perf_counter()
                if began > stop_perf:
                    return
                client.encrypt("foo", PLAINTEXT, AAD, CALL)
                mine.append(time.perf_counter() - began)
        except BaseException as e:  # noqa: BLE001 - reported
            errors.append(e)

    stop_perf = time.perf_counter() + (stop - time.monotonic())
    workers = [threading.Thread(target=work, args=(latencies[i],)) for i in range(threads)]
    for worker in workers:
        worker.start()
    cpu0, wall0 = os.times(), time.perf_counter()
    start_line.wait()
    for worker in workers:
        worker.join()
    wall, cpu1 = time.perf_counter() - wall0, os.times()
    if errors:
        raise SystemExit(f"{len(errors)} calls failed, the first: {errors[0]!r}")
    every = sorted(x for mine in latencies for x in mine)
    calls = len(every)
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return {
        "threads": threads,
        "calls": calls,
        "calls_per_s": round(calls / wall),
        "us_per_call_wall": round(wall / calls * 1e6 * threads, 1),
        "us_cpu_per_call": round(cpu / calls * 1e6, 1),
        "p50_ms": round(every[calls // 2] * 1e3, 3),
        "p99_ms": round(every[min(calls - 1, calls * 99 // 100)] * 1e3, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", default="1,64")
    parser.add_argument("--only", choices=["proxy", "instant"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    threads = [int(n) for n in args.threads.split(",")]
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        peers: list[tuple[str, XksEndpoint]] = []
        processes: list[subprocess.Popen[bytes]] = []
        try:
            if args.only != "instant":
                proxy, config = start_xks_proxy(Path(tmp))
                port = proxy.port
                peers.append(
                    (
                        "bundled proxy",
                        XksEndpoint(
                            f"http://127.0.0.1:{port}",
                            f"{config['uri_prefix']}/kms/xks/v1",
                            config["region"],
                            config["access_key_id"],
                            config["secret_access_key"],
                        ),
                    )
                )
            if args.only != "proxy":
                port = free_port()
                instant = subprocess.Popen(
                    [sys.executable, "-c", _INSTANT, str(port)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                )
                assert instant.stdin is not None
                instant.stdin.write(_instant_answer())
                instant.stdin.close()
                processes.append(instant)
                _wait(port, instant)
                secret = base64.b64encode(b"s" * 32).decode()
                peers.append(
                    (
                        "instant peer",
                        XksEndpoint(
                            f"http://127.0.0.1:{port}",
                            "/kms/xks/v1",
                            "us-east-1",
                            "A" * 20,
                            secret,
                        ),
                    )
                )
            for name, endpoint in peers:
                results[name] = []
                for n in threads:
                    with XksClient(endpoint, timeout=5.0, pool_size=max(n, 1)) as client:
                        row = run(client, n, args.seconds)
                    results[name].append(row)
                    print(
                        f"{name:14} threads={n:3}  {row['calls_per_s']:7} calls/s  "
                        f"wall {row['us_per_call_wall']:8.1f} µs/call  "
                        f"CPU {row['us_cpu_per_call']:6.1f} µs/call  "
                        f"p50 {row['p50_ms']:.3f} ms  p99 {row['p99_ms']:.3f} ms",
                        flush=True,
                    )
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=10)
            stop_all()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
