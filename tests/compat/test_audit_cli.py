"""``strongroom audit``: a missing trail is an error, ``--key`` takes every form of key
name the API takes, ``--tail N`` prints the newest events and ``--follow`` prints new ones
as servers write them."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import run_in_process, run_strongroom, start_server, stop_server

from ._support import OTHER_REGION, REGION, audit_events, eventually, unique_alias

pytestmark = pytest.mark.compat


def _rid(response: dict[str, Any]) -> str:
    return str(response["ResponseMetadata"]["RequestId"])


# -- a trail that is not there ------------------------------------------------------------


@pytest.mark.parametrize("action", ["verify", "events", "unmatched"])
@pytest.mark.parametrize("missing", ["data directory", "audit directory"])
def test_a_missing_trail_fails_naming_the_directory(
    tmp_path: Path, action: str, missing: str
) -> None:
    data_dir = tmp_path / "data"
    if missing == "audit directory":
        data_dir.mkdir()  # a data directory no server has written a trail into
    absent = data_dir if missing == "data directory" else data_dir / "audit"
    out = run_strongroom(["audit", action, "--data-dir", str(data_dir)], check=False)
    assert out.returncode != 0
    assert out.stdout == ""
    (line,) = out.stderr.splitlines()
    assert line.startswith(f"strongroom: no {missing} at {absent}: is --data-dir"), line
    assert "first start" in line
    assert not (data_dir / "audit").exists()  # nothing made on the way


# -- --key: key id, key ARN, alias name, alias ARN ----------------------------------------


@pytest.fixture(scope="module")
def replicated(server: Any) -> dict[str, Any]:
    """A multi-Region key with a replica, one alias name on both, each used through it,
    and another key used meanwhile."""
    us, eu = server.client(region=REGION), server.client(region=OTHER_REGION)
    primary = us.create_key(MultiRegion=True)["KeyMetadata"]
    replica = us.replicate_key(KeyId=primary["KeyId"], ReplicaRegion=OTHER_REGION)
    replica_arn = replica["ReplicaKeyMetadata"]["Arn"]

    def enabled() -> None:  # a replica is Creating for a moment, as in AWS
        assert eu.describe_key(KeyId=replica_arn)["KeyMetadata"]["KeyState"] == "Enabled"

    eventually(enabled)
    alias = unique_alias("audited")
    us.create_alias(AliasName=alias, TargetKeyId=primary["KeyId"])
    eu.create_alias(AliasName=alias, TargetKeyId=primary["KeyId"])
    other = us.create_key()["KeyMetadata"]
    return {
        "key id": primary["KeyId"],
        "arn": primary["Arn"],
        "replica arn": replica_arn,
        "alias": alias,
        "us": _rid(us.encrypt(KeyId=alias, Plaintext=b"us")),
        "eu": _rid(eu.encrypt(KeyId=alias, Plaintext=b"eu")),
        "other": _rid(us.encrypt(KeyId=other["KeyId"], Plaintext=b"other")),
    }


def _found(server: Any, *filters: str) -> set[str]:
    return {event["requestID"] for event in audit_events(server, *filters)[1]}


@pytest.mark.parametrize(
    ("form", "regions"),
    [
        ("key id", {"us", "eu"}),
        ("key id --region eu-west-1", {"eu"}),
        ("key ARN", {"us"}),
        ("replica ARN", {"eu"}),
        ("alias name", {"us", "eu"}),
        ("alias name --region us-east-1", {"us"}),
        ("alias ARN", {"eu"}),
    ],
)
def test_key_finds_the_events_of_the_key_in_any_form(
    server: Any, replicated: dict[str, Any], form: str, regions: set[str]
) -> None:
    name, _, region = form.partition(" --region ")
    given = {
        "key id": replicated["key id"],
        "key ARN": replicated["arn"],
        "replica ARN": replicated["replica arn"],
        "alias name": replicated["alias"],
        "alias ARN": f"arn:aws:kms:{OTHER_REGION}:{replicated['arn'].split(':')[4]}:"
        + replicated["alias"],
    }[name]
    filters = ["--key", given] + (["--region", region] if region else [])
    found = _found(server, *filters)
    for where in ("us", "eu"):
        assert (replicated[where] in found) == (where in regions), (form, where)
    assert replicated["other"] not in found


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("alias/never-made-{}", "names no key in account 111122223333 in any Region"),
        ("not a key", "not a key id, key ARN, alias name (alias/NAME) or alias ARN"),
    ],
)
def test_key_that_names_no_key_fails_saying_so(server: Any, key: str, message: str) -> None:
    key = key.format(time.time_ns())
    out = run_in_process(["audit", "events", *server.storage_args(), "--key", key], check=False)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith("strongroom: ") and message in out.stderr, out.stderr
    assert len(out.stderr.splitlines()) == 1


# -- --tail and --follow, on a server with two worker processes ---------------------------


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Any]:
    server = start_server(tmp_path / "data", None, "--workers", "2")
    yield server
    stop_server(server)


def _each_on_a_new_connection(server: Any, count: int) -> list[str]:
    """Request ids of ``count`` ListKeys, in order, each on a new connection (connections
    are spread over the workers: their events go to both segments)."""
    return [_rid(server.client().list_keys()) for _ in range(count)]


def test_tail_prints_the_newest_events_of_every_segment_in_time_order(workers: Any) -> None:
    rids = _each_on_a_new_connection(workers, 12)
    assert _tail(workers, 5) == rids[-5:]
    assert _tail(workers, 0) == []
    assert len(list((workers.data_dir / "audit").glob("*.log"))) == 2


def _tail(server: Any, count: int) -> list[str]:
    out = run_in_process(["audit", "events", *server.storage_args(), "--tail", str(count)])
    return [json.loads(line)["requestID"] for line in out.stdout.splitlines()]


class _Lines:
    """The lines a process prints, as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        assert process.stdout is not None
        stdout = process.stdout
        threading.Thread(target=lambda: [self._lines.put(s) for s in stdout], daemon=True).start()

    def request_ids(self, count: int, seconds: float = 15.0) -> list[str]:
        """The request ids of the next ``count`` events printed."""
        deadline = time.monotonic() + seconds
        found = []
        while len(found) < count:
            line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            found.append(json.loads(line)["requestID"])  # whole JSON lines only
        return found


def test_follow_prints_new_events_of_every_worker_and_new_segment_until_ctrl_c(
    workers: Any,
) -> None:
    before = _rid(workers.client().list_keys())
    follow = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "strongroom.cli.main",
            "audit",
            "events",
            "--data-dir",
            str(workers.data_dir),
            "--event-name",
            "ListKeys",
            "--follow",
            "--tail",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = _Lines(follow)
        assert lines.request_ids(1) == [before]  # the newest already there: following now
        rids = _each_on_a_new_connection(workers, 8)
        assert lines.request_ids(8) == rids
        stop_server(workers)  # and another server on the same data: its own new segment
        again = start_server(workers.data_dir)
        try:
            rid = _rid(again.client().list_keys())
            assert lines.request_ids(1) == [rid]
        finally:
            stop_server(again)
        follow.send_signal(signal.SIGINT)
        _, stderr = follow.communicate(timeout=15)
        assert follow.returncode == 0, stderr
        assert stderr == ""  # no traceback
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
