"""Kill -9 rounds: concurrent mixed writes against a real server, SIGKILL to its whole
process group at a random moment, a restart on the same data directory (and database),
then a check that everything the server acknowledged before it died is still there.

Each writer thread works on keys of its own, one request at a time, so the state the
server acknowledged for each key is known exactly. The one request a thread had in flight
when the server died may or may not have taken effect: for that key the check accepts
the state before it and the state after it. Used by ``test_crash_safety.py`` (a few short
rounds) and ``tools/crash_rounds.py`` (many rounds, figures for the README)."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from conftest import REGION, Server, _wait_healthy, free_port, run_in_process, started_server

ACCOUNT = "111122223333"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
GRANTEE = f"arn:aws:iam::{ACCOUNT}:user/crash-grantee"


def start_detached(data_dir: Path, database_url: str | None, *extra: str) -> Server:
    """``conftest.start_server`` with the server in a process group of its own, so that a
    SIGKILL to the group kills the supervisor and every worker at once, as a crash of the
    machine's power or an OOM kill of the group would."""
    port = free_port()
    log_path = data_dir.parent / f"{data_dir.name}-server.log"
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "strongroom.cli.main", "serve", "--port", str(port)]
    cmd += ["--data-dir", str(data_dir), *extra]
    if database_url:
        cmd += ["--database-url", database_url]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(endpoint, process, log_path)
    except RuntimeError:
        kill_group(process)
        raise
    return started_server(endpoint, data_dir, database_url, process, log_path, extra)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the server's whole process group (supervisor and workers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def stop_group(server: Server) -> None:
    """A clean stop: SIGTERM to the group, SIGKILL after 15 s."""
    try:
        os.killpg(server.process.pid, signal.SIGTERM)
        server.process.wait(timeout=15)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        kill_group(server.process)


class CutReply(BotoCoreError):
    """A reply whose body ended before its Content-Length: the server died while sending
    it (botocore reads without enforcing the length, and would parse what came as a reply)."""

    fmt = "the reply was cut after {received} of {expected} bytes"


def _refuse_cut_replies(http_response: Any, **_: Any) -> None:
    expected = http_response.headers.get("content-length")
    if expected is not None and len(http_response.content) != int(expected):
        raise CutReply(received=len(http_response.content), expected=expected)


def client(server: Server, timeout: float = 10.0) -> Any:
    """A KMS client with no retries and short timeouts: a dead server is an error at once,
    and so is a reply cut short by the kill (``CutReply``)."""
    kms = boto3.client(
        "kms",
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
        config=Config(
            retries={"max_attempts": 0},
            connect_timeout=timeout,
            read_timeout=timeout,
            max_pool_connections=4,
        ),
    )
    kms.meta.events.register("after-call.kms", _refuse_cut_replies)
    return kms


@dataclass
class KeyModel:
    """What the server acknowledged about one key."""

    key_id: str
    aliases: set[str] = field(default_factory=set)
    tags: dict[str, str] = field(default_factory=dict)
    policy_sid: str | None = None  # None: the default key policy
    grants: set[str] = field(default_factory=set)
    unknown_grant: bool = False  # a CreateGrant whose reply never came
    state: str = "Enabled"
    ciphertexts: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass
class Acked:
    """Every reply a round received: the request ids, and the errors among them."""

    request_ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Writer(threading.Thread):
    """One thread of mixed writes on keys of its own, until a request gets no reply."""

    def __init__(self, kms: Any, label: str, acked: Acked, lock: threading.Lock) -> None:
        super().__init__(daemon=True, name=f"crash-writer-{label}")
        self.kms = kms
        self.label = label
        self.acked = acked
        self.lock = lock
        self.keys: dict[str, KeyModel] = {}
        # The key whose last request got no reply: (model before, model if it took effect).
        self.in_doubt: tuple[KeyModel, KeyModel] | None = None
        self.requests = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stopped.is_set():
            n += 1
            try:
                self._one_key(n)
            except _NoReply:
                return

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response: dict[str, Any] = getattr(self.kms, operation)(**kwargs)
        except ClientError as exc:
            with self.lock:
                self.acked.request_ids.append(exc.response["ResponseMetadata"]["RequestId"])
                self.acked.errors.append(f"{operation}: {exc.response['Error']}")
            raise
        except BotoCoreError as exc:  # no reply: the server died with it in flight
            raise _NoReply from exc
        with self.lock:
            self.acked.request_ids.append(response["ResponseMetadata"]["RequestId"])
        self.requests += 1
        return response

    def _step(
        self, model: KeyModel, change: Callable[[KeyModel], None], operation: str, **kwargs: Any
    ) -> dict[str, Any]:
        """One request about ``model``'s key; ``change`` applies it to the model."""
        after = copy.deepcopy(model)
        change(after)
        try:
            response = self._call(operation, **kwargs)
        except _NoReply:
            self.in_doubt = (model, after)
            raise
        change(model)
        return response

    def _one_key(self, n: int) -> None:
        token = f"{self.label}-{n}-{uuid.uuid4().hex[:8]}"
        try:
            meta = self._call("create_key", Description=f"crash {token}")["KeyMetadata"]
        except ClientError:
            return
        key_id = meta["KeyId"]
        model = KeyModel(key_id)
        self.keys[key_id] = model
        alias = f"alias/crash-{token}"
        policy = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": token,
                        "Effect": "Allow",
                        "Principal": {"AWS": ROOT},
                        "Action": "kms:*",
                        "Resource": "*",
                    }
                ],
            }
        )
        plaintext = os.urandom(32)
        try:
            self._step(
                model,
                lambda m: m.aliases.add(alias),
                "create_alias",
                AliasName=alias,
                TargetKeyId=key_id,
            )
            self._step(
                model,
                lambda m: m.tags.update(crash=token),
                "tag_resource",
                KeyId=key_id,
                Tags=[{"TagKey": "crash", "TagValue": token}],
            )
            self._step(
                model,
                lambda m: setattr(m, "policy_sid", token),
                "put_key_policy",
                KeyId=key_id,
                PolicyName="default",
                Policy=policy,
            )
            try:
                grant = self._call(
                    "create_grant", KeyId=key_id, GranteePrincipal=GRANTEE, Operations=["Decrypt"]
                )
            except _NoReply:
                after = copy.deepcopy(model)
                after.unknown_grant = True
                self.in_doubt = (model, after)
                raise
            model.grants.add(grant["GrantId"])
            try:
                blob = self._call("encrypt", KeyId=key_id, Plaintext=plaintext)["CiphertextBlob"]
            except _NoReply:
                self.in_doubt = (model, model)
                raise
            model.ciphertexts.append((blob, plaintext))
            self._step(
                model, lambda m: setattr(m, "state", "Disabled"), "disable_key", KeyId=key_id
            )
            if n % 2 == 0:
                self._step(
                    model, lambda m: setattr(m, "state", "Enabled"), "enable_key", KeyId=key_id
                )
            if n % 3 == 0:
                self._step(
                    model,
                    lambda m: setattr(m, "state", "PendingDeletion"),
                    "schedule_key_deletion",
                    KeyId=key_id,
                    PendingWindowInDays=7,
                )
        except ClientError:  # recorded in acked.errors; this key's story stops here
            return


class _NoReply(Exception):
    pass


@dataclass
class RoundResult:
    """One round: what was acknowledged, and what the check found missing or wrong."""

    backend: str
    workers: int
    seconds_before_kill: float
    keys: int
    requests: int
    ciphertexts: int
    in_doubt: int
    errors_during_load: list[str]
    problems: list[str]

    def line(self) -> str:
        verdict = "clean" if not self.problems and not self.errors_during_load else "FAILED"
        return (
            f"{self.backend} workers={self.workers} killed after {self.seconds_before_kill:.2f}s:"
            f" {self.requests} acknowledged requests, {self.keys} keys,"
            f" {self.ciphertexts} ciphertexts, {self.in_doubt} in flight at the kill: {verdict}"
            + "".join(f"\n  {p}" for p in (self.errors_during_load + self.problems)[:20])
        )


def crash_rounds(
    data_dir: Path,
    database_url: str | None,
    workers: list[int],
    *,
    threads: int,
    kill_after: tuple[float, float],
    rng: random.Random,
) -> Iterator[RoundResult]:
    """One round per entry of ``workers`` (the server's worker processes in that round):
    write from ``threads`` threads, SIGKILL the server's process group after a random time
    in ``kill_after``, start it again on the same storage (with the next round's workers)
    and check; the server that checked one round takes the next round's load."""
    server = start_detached(data_dir, database_url, "--workers", str(workers[0]))
    try:
        for i, n in enumerate(workers):
            acked = Acked()
            lock = threading.Lock()
            writers = [Writer(client(server), f"w{j}", acked, lock) for j in range(threads)]
            try:
                for writer in writers:
                    writer.start()
                delay = rng.uniform(*kill_after)
                time.sleep(delay)
            finally:
                kill_group(server.process)
            for writer in writers:
                writer.stopped.set()
                writer.join(timeout=30)
                assert not writer.is_alive(), "a writer still waits for a dead server"
            errors = list(acked.errors)
            after = workers[i + 1] if i + 1 < len(workers) else n
            server = start_detached(data_dir, database_url, "--workers", str(after))
            problems = check(server, writers, acked)
            yield RoundResult(
                backend="postgresql" if database_url else "sqlite",
                workers=n,
                seconds_before_kill=delay,
                keys=sum(len(w.keys) for w in writers),
                requests=len(acked.request_ids),
                ciphertexts=sum(len(m.ciphertexts) for w in writers for m in w.keys.values()),
                in_doubt=sum(1 for w in writers if w.in_doubt is not None),
                errors_during_load=errors,
                problems=problems,
            )
    finally:
        stop_group(server)


def check(server: Server, writers: list[Writer], acked: Acked) -> list[str]:
    """Every acknowledged write present, every acknowledged ciphertext decrypts, every
    acknowledged request has its audit event, and ``audit verify`` passes."""
    kms = client(server, timeout=30)
    problems: list[str] = []
    for writer in writers:
        doubt = writer.in_doubt
        for key_id, model in writer.keys.items():
            if doubt is not None and doubt[0].key_id == key_id:
                problems += check_key(kms, doubt[0], doubt[1])
            else:
                problems += check_key(kms, model, model)
    _, events = _audit_events(server)
    seen = {event.get("requestID") for event in events}
    missing = [rid for rid in acked.request_ids if rid not in seen]
    if missing:
        problems.append(f"{len(missing)} acknowledged requests have no audit event: {missing[:5]}")
    verify = run_in_process(["audit", "verify", *server.storage_args()], check=False)
    if verify.returncode != 0:
        problems.append(f"audit verify failed: {verify.stdout} {verify.stderr}")
    return problems


def _audit_events(server: Server) -> tuple[str, list[dict[str, Any]]]:
    out = run_in_process(["audit", "events", *server.storage_args(), "--limit", "1000000"])
    return out.stdout, [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def check_key(kms: Any, before: KeyModel, after: KeyModel) -> list[str]:
    """What the server shows of one key is ``before`` or, attribute by attribute, ``after``
    (the request in flight at the kill took effect)."""
    key_id = before.key_id
    problems: list[str] = []

    def expect(what: str, actual: Any, *allowed: Any) -> None:
        if actual not in allowed:
            problems.append(f"{key_id}: {what} is {actual!r}, acknowledged {allowed[0]!r}")

    try:
        meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    except ClientError as exc:
        return [f"{key_id}: acknowledged CreateKey, DescribeKey says {exc.response['Error']}"]
    expect("state", meta["KeyState"], before.state, after.state)
    aliases = {a["AliasName"] for a in kms.list_aliases(KeyId=key_id)["Aliases"]}
    expect("aliases", aliases, before.aliases, after.aliases)
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key_id)["Tags"]}
    expect("tags", tags, before.tags, after.tags)
    policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    sids = {s.get("Sid") for s in policy["Statement"]}
    if before.policy_sid is not None and not {before.policy_sid, after.policy_sid} & sids:
        problems.append(f"{key_id}: policy lost its acknowledged statement {before.policy_sid}")
    grants = {g["GrantId"] for g in kms.list_grants(KeyId=key_id)["Grants"]}
    extra = grants - before.grants
    if not before.grants <= grants or len(extra) > (1 if after.unknown_grant else 0):
        problems.append(f"{key_id}: grants {grants}, acknowledged {before.grants}")
    if meta["KeyState"] == "PendingDeletion":
        kms.cancel_key_deletion(KeyId=key_id)  # leaves the key Disabled
    if meta["KeyState"] != "Enabled":
        kms.enable_key(KeyId=key_id)
    for blob, plaintext in before.ciphertexts:
        try:
            got = kms.decrypt(CiphertextBlob=blob)["Plaintext"]
        except ClientError as exc:
            problems.append(f"{key_id}: acknowledged ciphertext does not decrypt: {exc}")
            continue
        if got != plaintext:
            problems.append(f"{key_id}: ciphertext decrypts to other bytes")
    return problems
