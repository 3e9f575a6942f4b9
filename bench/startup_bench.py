#!/usr/bin/env python3
"""Start-up: the time from ``strongroom serve`` (the installed console script, with its
defaults: one worker per core) to the first 200 on ``GET /health``, on an empty data
directory and on one with 100,000 keys, on SQLite and on PostgreSQL.

The data is made once under ``--workdir`` and kept for later runs (growing 100,000 keys
takes minutes): ``prepare`` makes the schema, the root key and the admin credentials, then
``scale_bench.grow`` adds the keys through the seed path (the first ``--aliases`` with an
alias each). PostgreSQL databases are named after the data directory and kept too;
``--fresh`` remakes everything.

Each start is timed from just before ``Popen`` to the first 200 on /health, polled every
2 ms over a new connection. Also recorded: the CPU seconds of the server's processes
(supervisor, fork server, workers) at that moment, and the cores other processes used in
the second before the start (the machine is shared; a start takes about one core's work
on each of two cores, so a busy machine stretches it). ``--tree LABEL=SRC`` (repeatable)
runs the same starts against several source trees, interleaved, A/B style.

    python3 bench/startup_bench.py --runs 7                       # SQLite, empty and 100k
    python3 bench/startup_bench.py --backends sqlite,postgresql --runs 5 --json out.json
    python3 bench/startup_bench.py --tree main=/work/main/src --tree new=$PWD/src --runs 9
    python3 bench/startup_bench.py --nice -20 --runs 9     # a busy machine: the server first
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from kms_bench import CLK_TCK, HOST, Server, free_port, quiet_check, stop  # noqa: E402
from nodes_bench import BASE_URL  # noqa: E402
from scale_bench import grow, settings_for  # noqa: E402

POLL = 0.002  # seconds between /health attempts
TIMEOUT = 60.0


@dataclass
class Start:
    tree: str
    data: str
    seconds: float
    cpu: float  # CPU seconds of the server's processes when /health first answered
    other: float  # cores other processes used in the half second before the start
    load: float  # 1-minute load average before the start
    roles: dict[str, float] = field(default_factory=dict)  # CPU seconds by process role


@dataclass
class Summary:
    tree: str
    data: str
    runs: int
    median_s: float
    min_s: float
    max_s: float
    median_cpu: float
    median_other: float
    starts: list[float] = field(default_factory=list)
    median_roles: dict[str, float] = field(default_factory=dict)


def console_script() -> str:
    """The ``strongroom`` console script of this interpreter (not a pyenv shim)."""
    script = Path(sys.executable).parent / "strongroom"
    if not script.exists():
        raise SystemExit(f"no console script at {script}: pip install -e . first")
    return str(script)


def database_url(name: str) -> str:
    return f"{BASE_URL.rpartition('/')[0]}/{name}"


def make_data(
    workdir: Path, backend: str, keys: int, aliases: int, fresh: bool
) -> tuple[Path, str | None]:
    """The data directory (and PostgreSQL URL) for ``backend`` with ``keys`` keys, made
    unless it is there from an earlier run."""
    import psycopg

    from strongroom.server.wiring import prepare

    label = f"{backend}-{keys}"
    data_dir = workdir / label
    url = None
    done = data_dir / ".startup-bench-done"
    if backend == "postgresql":
        name = f"strongroom_startup_{keys}"
        url = database_url(name)
        admin = BASE_URL.replace("+psycopg", "")
        with psycopg.connect(admin, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if fresh or not done.exists() or not exists:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}"')
                shutil.rmtree(data_dir, ignore_errors=True)
    elif fresh or not done.exists():
        shutil.rmtree(data_dir, ignore_errors=True)
    if done.exists():
        return data_dir, url
    settings = settings_for(data_dir, url)
    prepare(settings)
    if keys:
        seconds = grow(settings, "", keys, min(aliases, keys), 0)
        print(f"  {label}: grew {keys} keys in {seconds:.1f} s", flush=True)
    done.touch()
    return data_dir, url


def health(port: int) -> bool:
    conn = http.client.HTTPConnection(HOST, port, timeout=1.0)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def _stat(pid: int) -> tuple[int, float, str]:
    """(parent pid, CPU seconds, command line) of a live process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK, cmdline


def roles(server: Server) -> dict[str, float]:
    """CPU seconds so far of each process of the server, by role: the supervisor, the fork
    server, multiprocessing's resource tracker, each worker (the fork server's children)."""
    out: dict[str, float] = {}
    procs = {}
    for pid in server.pids():
        with contextlib.suppress(OSError):
            procs[pid] = _stat(pid)
    forkserver = next((p for p, (_, _, c) in procs.items() if "forkserver" in c), None)
    workers = 0
    for pid, (ppid, cpu, cmdline) in sorted(procs.items()):
        if pid == server.proc.pid:
            out["supervisor"] = cpu
        elif pid == forkserver:
            out["forkserver"] = cpu
        elif "resource_tracker" in cmdline:
            out["resource_tracker"] = cpu
        elif ppid in (forkserver, server.proc.pid):
            workers += 1
            out[f"worker{workers}"] = cpu
    return out


def _prioritise(nice: int) -> None:
    """In the server's process, before it runs: ``nice`` for the process and for its
    session's autogroup. With autogroup scheduling (Linux's default for desktops and many
    VMs, /proc/sys/kernel/sched_autogroup_enabled) the CPU is shared fairly between
    sessions first, and a process's own niceness only orders it within its session: the
    server's new session gets the weight of ``nice`` against every other session."""
    os.nice(nice)
    with contextlib.suppress(OSError), open("/proc/self/autogroup", "w") as f:
        f.write(str(nice))


def one_start(
    src: str, data_dir: Path, url: str | None, workdir: Path, extra: list[str], nice: int = 0
) -> tuple[float, float, dict[str, float]]:
    """Seconds from the start of ``strongroom serve`` to /health's first 200, and the CPU
    seconds its processes had used by then (in all, and by role)."""
    port = free_port()
    argv = [console_script(), "serve", "--port", str(port), "--data-dir", str(data_dir), *extra]
    env = {**os.environ, "PYTHONPATH": src}
    env.pop("STRONGROOM_WORKERS", None)
    if url is not None:
        env["STRONGROOM_DATABASE_URL"] = url
    log = workdir / "serve.log"
    began = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
        preexec_fn=(lambda: _prioritise(nice)) if nice else None,
    )
    server = Server("strongroom", proc, port, log)
    try:
        while not health(port):
            if proc.poll() is not None:
                raise RuntimeError(f"strongroom serve exited {proc.returncode}:\n{server.tail()}")
            if time.monotonic() - began > TIMEOUT:
                raise RuntimeError(f"no /health after {TIMEOUT} s:\n{server.tail()}")
            time.sleep(POLL)
        seconds = time.monotonic() - began
        by_role = roles(server)
        return seconds, sum(by_role.values()), by_role
    finally:
        stop(server)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, default=Path("/tmp/startup-bench"))
    p.add_argument("--backends", default="sqlite", help="sqlite,postgresql")
    p.add_argument("--sizes", default="0,100000", help="key counts, e.g. 0,100000")
    p.add_argument("--aliases", type=int, default=20_000)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--tree", action="append", default=[], metavar="LABEL=SRC")
    p.add_argument("--fresh", action="store_true", help="remake the data")
    p.add_argument("--json", type=Path)
    p.add_argument("--serve-arg", action="append", default=[], help="passed to serve")
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run the server at this niceness, and its session's autogroup (-20: ahead of "
        "everything else on a shared machine, an estimate of a quiet machine's start; "
        "needs root)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.nice:  # this process polls /health: it must not wait behind the machine either
        _prioritise(args.nice)
    args.workdir.mkdir(parents=True, exist_ok=True)
    trees = dict(t.split("=", 1) for t in args.tree) or {"this": str(ROOT / "src")}
    datasets = []
    for backend in args.backends.split(","):
        for keys in (int(k) for k in args.sizes.split(",")):
            data_dir, url = make_data(args.workdir, backend, keys, args.aliases, args.fresh)
            datasets.append((f"{backend}-{keys}", data_dir, url))
    if args.runs == 0:
        return 0
    starts: list[Start] = []
    for _, data_dir, url in datasets:  # a first start each: the page cache warm
        for src in trees.values():
            one_start(src, data_dir, url, args.workdir, args.serve_arg, args.nice)
    for i in range(args.runs):
        for label, data_dir, url in datasets:
            for tree, src in trees.items():
                other = quiet_check(0.5)
                load = os.getloadavg()[0]
                seconds, cpu, by_role = one_start(
                    src, data_dir, url, args.workdir, args.serve_arg, args.nice
                )
                starts.append(Start(tree, label, seconds, cpu, other, load, by_role))
                shown = " ".join(f"{k} {v:.2f}" for k, v in by_role.items())
                print(
                    f"run {i + 1} {label:18} {tree:8} {seconds:6.3f} s  cpu {cpu:5.2f} s "
                    f"({shown})  other {other:4.2f} cores  load {load:4.2f}",
                    flush=True,
                )
    summaries = []
    for label, _, _ in datasets:
        for tree in trees:
            mine = [s for s in starts if s.tree == tree and s.data == label]
            times = [s.seconds for s in mine]
            summaries.append(
                Summary(
                    tree,
                    label,
                    len(mine),
                    statistics.median(times),
                    min(times),
                    max(times),
                    statistics.median(s.cpu for s in mine),
                    statistics.median(s.other for s in mine),
                    times,
                    {
                        role: statistics.median(s.roles.get(role, 0.0) for s in mine)
                        for role in mine[0].roles
                    },
                )
            )
    print(f"\n{'data':18} {'tree':8} {'median':>8} {'min':>7} {'max':>7} {'cpu':>6} {'other':>6}")
    for s in summaries:
        print(
            f"{s.data:18} {s.tree:8} {s.median_s:7.3f}s {s.min_s:6.3f}s {s.max_s:6.3f}s "
            f"{s.median_cpu:5.2f}s {s.median_other:5.2f}  "
            + " ".join(f"{k} {v:.3f}" for k, v in s.median_roles.items())
        )
    if args.json:
        with contextlib.suppress(OSError):
            args.json.parent.mkdir(parents=True, exist_ok=True)
        out: dict[str, Any] = {
            "trees": trees,
            "cores": os.cpu_count(),
            "summaries": [asdict(s) for s in summaries],
            "starts": [asdict(s) for s in starts],
        }
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
