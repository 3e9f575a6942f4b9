#!/usr/bin/env python3
"""Summarise a py-spy raw profile of Strongroom (``py-spy record --format raw --threads``).

    python bench/profile_summary.py /tmp/profile.txt [--rps 2800 --cpu 1.0] [--top 25]

Prints, per thread, the share of samples; for the threads that serve requests, the time by
cost bucket (each sample is charged to the innermost frame that names a bucket: SigV4,
JSON codec, audit, crypto, SQL, uvicorn, asyncio ...), the top functions by self and by
inclusive time, and the time by line of ``KmsApp._kms`` (the request path, step by step).
With ``--rps`` and ``--cpu`` (cores busy in the server) it also converts shares to
microseconds of CPU per request.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from pathlib import Path

FRAME_RE = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# (bucket, predicate on (func, file)); the innermost frame that matches any rule decides.
# Order matters only among rules that match the same frame.
RULES: list[tuple[str, re.Pattern[str]]] = [
    ("SigV4 verify (auth/sigv4, server/authn)", re.compile(r"strongroom/(auth/|server/authn)")),
    ("JSON codec (protocol/)", re.compile(r"strongroom/protocol/")),
    (
        "audit event build (audit/events, app._identity)",
        re.compile(r"strongroom/audit/events|_identity"),
    ),
    ("audit log: chain hash", re.compile(r"^chain_hash$")),
    (
        "audit log: commit (orjson) / group write + fdatasync / wake (audit/log)",
        re.compile(r"strongroom/audit/log"),
    ),
    (
        "SQL: SQLAlchemy + sqlite3 (storage/, sqlalchemy)",
        re.compile(r"strongroom/storage/|sqlalchemy/|sqlite3"),
    ),
    (
        "crypto (crypto/, keystores/, cryptography)",
        re.compile(r"strongroom/crypto/|strongroom/keystores/|cryptography/"),
    ),
    ("request / event ids (domain/requestids)", re.compile(r"strongroom/domain/requestids")),
    (
        "authz + key state + resolve (services/, authz/, domain/)",
        re.compile(r"strongroom/(services|authz|domain)/"),
    ),
    ("handlers/", re.compile(r"strongroom/handlers/")),
    ("datetime / time", re.compile(r"datetime|_strptime")),
    ("app._kms glue (header list, reply dicts)", re.compile(r"strongroom/server/app")),
    ("uvicorn HTTP protocol (httptools_impl, middleware)", re.compile(r"uvicorn/")),
    (
        "concurrent.futures / queue / threading",
        re.compile(r"concurrent/futures|queue\.py|threading\.py"),
    ),
    ("asyncio / uvloop event loop", re.compile(r"asyncio/|uvloop")),
    ("logging", re.compile(r"logging/")),
]


def parse(path: Path) -> list[tuple[str, list[tuple[str, str, int]], int]]:
    """(thread, frames root-first as (func, file, line), samples) per stack line."""
    stacks = []
    for raw in path.read_text(errors="replace").splitlines():
        raw = raw.strip()
        if not raw:
            continue
        body, _, count = raw.rpartition(" ")
        if not count.isdigit():
            continue
        parts = body.split(";")
        thread = "?"
        frames = []
        for part in parts:
            if part.startswith("process "):
                continue
            if part.startswith("thread "):
                thread = part.split(":", 1)[1].strip() if ":" in part else part
                continue
            m = FRAME_RE.match(part)
            if m:
                frames.append((m["func"], m["file"], int(m["line"] or 0)))
            else:
                frames.append((part, "", 0))
        stacks.append((thread, frames, int(count)))
    return stacks


def bucket(frames: list[tuple[str, str, int]]) -> str:
    for func, file, _ in reversed(frames):
        for name, rule in RULES:
            if rule.search(file) or rule.search(func):
                return name
    return "other: " + (frames[-1][1] if frames else "?")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("profile", type=Path)
    p.add_argument("--rps", type=float, help="requests/s measured during the profile")
    p.add_argument("--cpu", type=float, help="cores busy in the server during the profile")
    p.add_argument("--top", type=int, default=20)
    args = p.parse_args()

    stacks = parse(args.profile)
    total = sum(c for _, _, c in stacks)
    by_thread: Counter[str] = Counter()
    for thread, _, c in stacks:
        by_thread[thread] += c
    print(f"{total} samples (idle excluded)\n")
    print("Samples by thread:")
    for thread, c in by_thread.most_common():
        print(f"  {c / total:6.1%}  {thread}")

    us_per_sample = None
    if args.rps and args.cpu:
        # CPU microseconds per request, spread over the samples.
        us_per_sample = args.cpu * 1e6 / args.rps / total
        per_request = args.cpu * 1e6 / args.rps
        print(f"\n{args.cpu:.2f} cores / {args.rps:,.0f} req/s = {per_request:.0f} us CPU/request")

    buckets: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    kms_lines: Counter[int] = Counter()
    thread_buckets: dict[str, Counter[str]] = defaultdict(Counter)
    for thread, frames, c in stacks:
        b = bucket(frames)
        buckets[b] += c
        thread_buckets[thread][b] += c
        if frames:
            f, file, line = frames[-1]
            self_time[f"{f} ({file}:{line})"] += c
        seen = set()
        for f, file, _ in frames:
            key = f"{f} ({file})"
            if key not in seen:
                seen.add(key)
                incl[key] += c
        for i, (f, file, line) in enumerate(frames):
            # the line of _kms this sample is at (innermost _kms frame)
            if (
                f == "KmsApp._kms"
                and file.endswith("server/app.py")
                and not any(g == "KmsApp._kms" for g, _, _ in frames[i + 1 :])
            ):
                kms_lines[line] += c

    def show(counter: Counter[str], title: str, n: int) -> None:
        print(f"\n{title}:")
        for name, c in counter.most_common(n):
            extra = f"  {c * us_per_sample:6.1f} us/req" if us_per_sample else ""
            print(f"  {c / total:6.1%}{extra}  {name}")

    show(buckets, "Time by bucket (all threads; innermost matching frame)", 40)
    for thread, counter in sorted(thread_buckets.items(), key=lambda kv: -sum(kv[1].values())):
        show(counter, f"  ... of which in thread {thread}", 12)
    show(self_time, f"Top {args.top} functions by self time", args.top)
    show(incl, f"Top {args.top} functions by inclusive time", args.top)
    if kms_lines:
        src = None
        for _thread, frames, _ in stacks:
            for f, file, _ in frames:
                if f == "KmsApp._kms":
                    src = file
                    break
            if src:
                break
        text: list[str] = []
        if src:
            for root in (Path.cwd() / "src", Path(__file__).resolve().parent.parent / "src"):
                candidate = root / src
                if candidate.exists():
                    text = candidate.read_text().splitlines()
                    break
        print("\nKmsApp._kms by line (inclusive):")
        for line, c in sorted(kms_lines.items()):
            code = text[line - 1].strip() if 0 < line <= len(text) else ""
            extra = f"  {c * us_per_sample:6.1f} us/req" if us_per_sample else ""
            print(f"  {c / total:6.1%}{extra}  app.py:{line:<4} {code[:90]}")


if __name__ == "__main__":
    main()
