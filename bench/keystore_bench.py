#!/usr/bin/env python3
"""Encrypt at 64 connections through each place key material can live, beside moto.

One run, one machine, the same SigV4-signed Encrypt request replayed by ``wrk`` (the
machinery of ``kms_bench.py``), against:

* ``file``           Strongroom, root key in a file (the default)
* ``pkcs11``         Strongroom, root key in a SoftHSM2 token (``--root-key softhsm``), the
                     unwrapped-material cache on (the default): steady state never calls the
                     token
* ``pkcs11-nocache`` the same with ``STRONGROOM_MATERIAL_CACHE_KEYS=0``: every Encrypt reads
                     its key's wrapped material row and unwraps it inside the token
* ``cks``            Strongroom (file root), the key in a custom key store on a SoftHSM2
                     token (``admin hsm-cluster add --softhsm``): every Encrypt runs AES-GCM
                     inside the token, behind the one per-process token lock
* ``xks``            Strongroom (file root), the key in an external key store whose proxy is
                     the bundled ``strongroom xks-proxy --dev`` (SoftHSM2) on this machine:
                     every Encrypt seals under the key's own material, then has the proxy
                     encrypt that again, over a keep-alive connection (double encryption)
* ``xks-proxy``      that proxy alone: its own req/s for the signed XKS Encrypt request
                     (key ``foo``, 256 + 16 bytes, the size Strongroom sends) replayed by wrk
* ``moto``           moto's server

Prints req/s, p50, p99 and each configuration's ratio to moto and to ``file``. With
``--paced R``, each configuration also runs at R requests a second in all (each connection
waits 1000 * connections / R ms before each request): the latency of a request that does
not queue behind others, where the saturated p50 is only connections / req/s.

    python3 bench/keystore_bench.py                        # ~1.5 min
    python3 bench/keystore_bench.py --workers 2 --duration 10 --json /tmp/keystores.json
    python3 bench/keystore_bench.py --configs file,cks --connections 1,64
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kms_bench as kb

CONFIGS = ("file", "pkcs11", "pkcs11-nocache", "cks", "xks", "xks-proxy", "moto")


def start_strongroom(workdir: Path, name: str, workers: int, env: dict[str, str]) -> kb.Target:
    server = kb.start_strongroom(workdir, workers, name=name, env=env)
    return kb.Target(name, server, *kb.strongroom_credentials(workdir, name))


def custom_key_store_key(target: kb.Target, data: Path) -> str:
    """A SoftHSM2 cluster under ``data``, a connected custom key store on it, a key in it."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "strongroom.cli.main",
            "admin",
            "hsm-cluster",
            "add",
            "--softhsm",
            "--data-dir",
            str(data),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    cluster = json.loads(done.stdout)
    kms = target.client()
    store = kms.create_custom_key_store(
        CustomKeyStoreName="bench",
        CloudHsmClusterId=cluster["ClusterId"],
        TrustAnchorCertificate=Path(cluster["TrustAnchorCertificate"]).read_text(),
        KeyStorePassword=cluster["KeyStorePassword"],
    )["CustomKeyStoreId"]
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    deadline = time.monotonic() + 60
    while True:
        found = kms.describe_custom_key_stores(CustomKeyStoreId=store)["CustomKeyStores"][0]
        if found["ConnectionState"] == "CONNECTED":
            break
        if found["ConnectionState"] == "FAILED" or time.monotonic() > deadline:
            raise RuntimeError(f"custom key store did not connect: {found}")
        time.sleep(0.2)
    meta = kms.create_key(CustomKeyStoreId=store, Origin="AWS_CLOUDHSM")["KeyMetadata"]
    return meta["KeyId"]


class XksProxy:
    """The bundled XKS proxy (``strongroom xks-proxy --dev``), started once for ``xks`` and
    ``xks-proxy``."""

    def __init__(self, workdir: Path) -> None:
        self.server, self.config = kb.start_xks_proxy(workdir)
        self.port = self.server.port
        self.uri_path = f"{self.config['uri_prefix']}/kms/xks/v1"

    def signed_encrypt(self, plaintext: bytes) -> tuple[str, dict[str, str], bytes]:
        """A SigV4-signed XKS Encrypt of ``plaintext`` under ``foo``, as Strongroom sends it
        (valid for the proxy's 5 minutes of clock skew): (path, headers, body)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        path = f"{self.uri_path}/keys/foo/encrypt"
        body = json.dumps(
            {
                "requestMetadata": {
                    "awsPrincipalArn": "arn:aws:iam::111122223333:user/bench",
                    "kmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/bench",
                    "kmsOperation": "Encrypt",
                    "kmsRequestId": "bench",
                },
                "plaintext": base64.b64encode(plaintext + bytes(16)).decode(),
                "additionalAuthenticatedData": base64.b64encode(bytes(64)).decode(),
                "encryptionAlgorithm": "AES_GCM",
                "ciphertextDataIntegrityValueAlgorithm": "SHA_256",
            },
            separators=(",", ":"),
        ).encode()
        request = AWSRequest(
            method="POST",
            url=f"http://{kb.HOST}:{self.port}{path}",
            data=body,
            headers={"Host": f"{kb.HOST}:{self.port}", "Content-Type": "application/json"},
        )
        credentials = Credentials(self.config["access_key_id"], self.config["secret_access_key"])
        SigV4Auth(credentials, "kms-xks-proxy", self.config["region"]).add_auth(request)
        return path, dict(request.headers.items()), body


def external_key_store_key(target: kb.Target, proxy: XksProxy) -> str:
    """A connected external key store on ``proxy`` and a key in it backed by ``foo``."""
    kms = target.client()
    store = kms.create_custom_key_store(
        CustomKeyStoreName="bench-xks",
        CustomKeyStoreType="EXTERNAL_KEY_STORE",
        XksProxyUriEndpoint=f"http://{kb.HOST}:{proxy.port}",
        XksProxyUriPath=proxy.uri_path,
        XksProxyAuthenticationCredential={
            "AccessKeyId": proxy.config["access_key_id"],
            "RawSecretAccessKey": proxy.config["secret_access_key"],
        },
        XksProxyConnectivity="PUBLIC_ENDPOINT",
    )["CustomKeyStoreId"]
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    meta = kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=store, XksKeyId="foo")
    key_id: str = meta["KeyMetadata"]["KeyId"]
    return key_id


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--configs", default=",".join(CONFIGS), help="comma-separated, of " + ", ".join(CONFIGS)
    )
    p.add_argument("--workers", type=int, default=2, help="Strongroom worker processes (2)")
    p.add_argument("--duration", type=float, default=10, help="seconds per wrk run (10)")
    p.add_argument("--connections", default="64", help="comma-separated (64)")
    p.add_argument("--wrk-threads", type=int, default=1)
    p.add_argument("--plaintext-bytes", type=int, default=256)
    p.add_argument(
        "--paced", type=float, help="also run at this many req/s in all (latency, not queueing)"
    )
    p.add_argument("--json", type=Path, help="write the results to this file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2
    configs = [c for c in args.configs.split(",") if c]
    for c in configs:
        if c not in CONFIGS:
            print(f"unknown configuration {c}", file=sys.stderr)
            return 2
    connections = [int(c) for c in args.connections.split(",") if c]
    plaintext = os.urandom(args.plaintext_bytes)
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    workdir = Path(tempfile.mkdtemp(prefix="keystore_bench-"))
    runs: list[kb.Run] = []
    results: dict[str, Any] = {"machine": kb.machine(), "settings": vars(args) | {"json": None}}
    try:
        targets: dict[str, kb.Target] = {}
        proxy = XksProxy(workdir) if {"xks", "xks-proxy"} & set(configs) else None
        requests: dict[str, Callable[[], tuple[str, dict[str, str], bytes]]] = {}
        for name in configs:
            if name == "xks-proxy":
                assert proxy is not None
                targets[name] = kb.Target(name, proxy.server, "", "")
                requests[name] = partial(proxy.signed_encrypt, plaintext)
                continue
            if name == "moto":
                targets[name] = kb.Target("moto", kb.start_moto(workdir), "testing", "testing")
                targets[name].key_id = targets[name].client().create_key()["KeyMetadata"]["KeyId"]
                continue
            env = {}
            if name.startswith("pkcs11"):
                env["STRONGROOM_ROOT_KEY"] = "softhsm"
            if name == "pkcs11-nocache":
                env["STRONGROOM_MATERIAL_CACHE_KEYS"] = "0"
            target = start_strongroom(workdir, name, args.workers, env)
            kms = target.client()
            if name == "cks":
                target.key_id = custom_key_store_key(target, workdir / f"{name}-data")
            elif name == "xks":
                assert proxy is not None
                target.key_id = external_key_store_key(target, proxy)
            else:
                target.key_id = kms.create_key(Description="keystore_bench")["KeyMetadata"]["KeyId"]
            targets[name] = target
            print(f"{name:<15} pid {target.server.proc.pid}, port {target.server.port}", flush=True)

        def measure(name: str, conns: int, seconds: float, delay_ms: float | None = None) -> kb.Run:
            r = kb.run_wrk(
                targets[name],
                "Encrypt",
                conns,
                seconds,
                plaintext,
                workdir,
                args.wrk_threads,
                request=requests.get(name),
                delay_ms=delay_ms,
            )
            r.server = name
            return r

        for name in targets:  # warm up: caches, sessions, connections
            measure(name, max(connections), 2)
        for conns in connections:
            for name in targets:
                r = measure(name, conns, args.duration)
                runs.append(r)
                status = "ok" if r.ok else f"PROBLEM: {r.problem or r.errors}"
                print(
                    f"  {name:<15} Encrypt c={conns:<3} {r.rps:>9,.0f} req/s"
                    f"  p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:7.2f} ms"
                    f"  server cpu {r.server_cpu:.2f}  other {r.other_cpu:.2f}  {status}",
                    flush=True,
                )
        paced: list[kb.Run] = []
        if args.paced:
            for conns in connections:
                delay = 1000 * conns / args.paced
                for name in targets:
                    r = measure(name, conns, args.duration, delay)
                    paced.append(r)
                    print(
                        f"  {name:<15} Encrypt c={conns:<3} paced {r.rps:>7,.0f} req/s"
                        f"  p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:7.2f} ms"
                        f"  {'ok' if r.ok else f'PROBLEM: {r.problem or r.errors}'}",
                        flush=True,
                    )
        print()
        print(
            f"Encrypt, {args.workers} Strongroom workers, wrk -t{args.wrk_threads}, "
            f"{args.duration:g} s per run, {os.cpu_count()} cores"
        )
        head = f"{'configuration':<16}{'conns':>6}{'req/s':>10}{'p50 ms':>8}{'p99 ms':>8}"
        head += f"{'cpu':>6}{'/moto':>7}{'/file':>7}{'p50/file':>9}"
        print(head)
        print("-" * len(head))
        by = {(r.server, r.connections): r for r in runs}
        for conns in connections:
            for name in targets:
                r = by[(name, conns)]
                moto = by.get(("moto", conns))
                file = by.get(("file", conns))
                vs_moto = f"{r.rps / moto.rps:6.1f}x" if moto and moto.rps else "      -"
                vs_file = f"{r.rps / file.rps:6.2f}x" if file and file.rps else "      -"
                p50_file = f"{r.p50_ms / file.p50_ms:8.2f}x" if file and file.p50_ms else "       -"
                print(
                    f"{name:<16}{conns:>6}{r.rps:>10,.0f}{r.p50_ms:>8.2f}{r.p99_ms:>8.2f}"
                    f"{r.server_cpu:>6.2f} {vs_moto} {vs_file} {p50_file}"
                    + ("" if r.ok else "   <-- FAILED")
                )
        if paced:
            print(f"\npaced at {args.paced:g} req/s in all")
            head = f"{'configuration':<16}{'conns':>6}{'req/s':>10}{'p50 ms':>8}{'p99 ms':>8}"
            print(head + f"{'p50/file':>9}")
            by_paced = {(r.server, r.connections): r for r in paced}
            for r in paced:
                file = by_paced.get(("file", r.connections))
                ratio = f"{r.p50_ms / file.p50_ms:8.2f}x" if file and file.p50_ms else "       -"
                print(
                    f"{r.server:<16}{r.connections:>6}{r.rps:>10,.0f}{r.p50_ms:>8.2f}"
                    f"{r.p99_ms:>8.2f} {ratio}" + ("" if r.ok else "   <-- FAILED")
                )
            results["paced"] = [{**asdict(r), "ok": r.ok} for r in paced]
        noisy = [r for r in runs if r.other_cpu > kb.NOISY]
        if noisy:
            print(
                f"WARNING: other processes used up to {max(r.other_cpu for r in noisy):.2f} "
                "cores during some runs: numbers are low and noisy."
            )
        results["runs"] = [{**asdict(r), "ok": r.ok} for r in runs]
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str))
            print(f"\nresults written to {args.json}")
        return 0 if all(r.ok for r in runs + paced) else 1
    except BaseException:
        for server in list(kb.STARTED):
            tail = server.tail(15)
            if tail:
                print(f"--- last lines of {server.name}'s log ---\n{tail}", file=sys.stderr)
        raise
    finally:
        kb.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
