#!/usr/bin/env python3
"""In-process cost of one authorization decision (``authz.decision.Authorizer.decide``), no HTTP.

Times ``decide(caller, "Encrypt", key)`` for the bench's caller (the admin user, allowed by
its identity policy ``kms:*``) on a symmetric key under two key policies: the default key
policy and ``bench/policies/ten_statements.json`` (10 statements, 9 with conditions). A
third line adds an encryption context that the ten-statement policy's conditions compare.

    python bench/authz_micro.py [--n 100000]

Numbers are microseconds of CPU time of this process per call (``time.process_time``,
best of ``--repeat`` rounds): the machine is shared, and CPU time moves less than wall
time when other processes take the cores.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from strongroom.authz.decision import Authorizer
from strongroom.authz.policy import default_key_policy
from strongroom.domain.enums import KeySpec, KeyUsage
from strongroom.domain.models import Caller, Key, Principal
from strongroom.services.key_records import new_key_record

ACCOUNT = "111122223333"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ADMIN_POLICY = (
    '{"Version": "2012-10-17", "Statement": '
    '[{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}'
)
TEN_STATEMENTS = Path(__file__).parent / "policies" / "ten_statements.json"


def _key(policy: str) -> Key:
    return new_key_record(
        ACCOUNT,
        "us-east-1",
        KEY_ARN.rsplit("/", 1)[1],
        key_spec=KeySpec.SYMMETRIC_DEFAULT,
        key_usage=KeyUsage.ENCRYPT_DECRYPT,
        description="",
        policy=policy,
        created=datetime(2026, 1, 1, tzinfo=UTC),
    ).evolve(current_version=1)


def _best_us(fn: Callable[[], object], n: int, repeat: int) -> float:
    """Best mean microseconds per call of ``fn()`` over ``repeat`` rounds of ``n`` calls."""
    for _ in range(max(1, n // 10)):
        fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - t0) / n * 1e6)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100_000, help="calls per round")
    p.add_argument("--repeat", type=int, default=5, help="rounds; the best is reported")
    args = p.parse_args()

    admin = Principal(f"arn:aws:iam::{ACCOUNT}:user/admin", ACCOUNT, "user", "admin")
    caller = Caller(admin, "AKIA", "us-east-1", "10.0.0.1", "bench", (ADMIN_POLICY,))
    default_key = _key(default_key_policy(ACCOUNT))
    ten_key = _key(TEN_STATEMENTS.read_text())
    context = {"app": "app-7", "classification": "public"}
    decide = Authorizer().decide
    cases: list[tuple[str, Callable[[], object]]] = [
        ("default key policy", lambda: decide(caller, "Encrypt", default_key)),
        ("ten_statements.json", lambda: decide(caller, "Encrypt", ten_key)),
        (
            "ten_statements.json + encryption context",
            lambda: decide(caller, "Encrypt", ten_key, encryption_context=context),
        ),
    ]
    for name, fn in cases:
        outcome = fn()
        assert getattr(outcome, "allowed", False), f"{name}: the bench caller must be allowed"
        print(f"{name:<42} {_best_us(fn, args.n, args.repeat):7.2f} µs per decide")


if __name__ == "__main__":
    main()
