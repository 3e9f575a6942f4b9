"""Serving: one process, or several worker processes that each have their own listening socket.

With several workers, each has its own socket bound to the same address with
``SO_REUSEPORT``, so the kernel spreads new connections over the workers evenly (by a hash
of the connection's addresses). uvicorn's own multi-worker mode shares one listening socket
instead, and the worker that wakes first accepts every connection waiting: a client that
opens its connections at once (a load generator, a connection pool) often lands on one
worker, which then serves everything while the others idle.

The supervisor (the parent process) checks the address is free with an ordinary bind
first, so a second server started on the same port fails with "address in use" rather
than joining the first one's group. Then it opens one listening socket per worker (port 0
picks the port for all of them) and hands each worker its own: connections that reach a
worker still starting wait in its socket's backlog, and so do those that reach a worker
that died until the supervisor has started another in its place on the same socket (a
worker that exits with an error within seconds of its start failed to start: the supervisor
stops and exits 1). On SIGTERM or SIGINT it stops the workers and exits 0.

Workers are forked from a fork server (``multiprocessing``'s "forkserver"), a fresh process
the supervisor starts as soon as it knows it will have workers (``prestart_workers``): it
imports the server while the supervisor checks the data directory, the database and the
root key, so a worker starts with everything imported (the imports take most of a start)
and inherits nothing else: no database connection, no token session, no thread.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from multiprocessing.process import BaseProcess
from typing import Any

from strongroom.server.logs import configure_logging
from strongroom.server.settings import ENV_PREFIX

log = logging.getLogger(__name__)

APP_FACTORY = "strongroom.server.wiring:create_app"
_BACKLOG = 2048  # uvicorn's default
_STOP_TIMEOUT = 15.0  # seconds a worker has to finish in-flight requests on stop
_WATCH_INTERVAL = 0.5  # seconds between checks that every worker is alive
_FAILED_START = 5.0  # a worker that exits with an error this soon after its start failed to start
# What the fork server imports before it forks the first worker: the app and the stack,
# and what every worker would compute alike (``server/preload.py``), last.
_PRELOAD = "strongroom.server.preload"


# The database driver a worker's engine imports, by the database the settings name (the
# fork server imports it: psycopg alone is ~0.07 s CPU of each PostgreSQL worker's start).
_DRIVERS = {
    "sqlite": ("sqlite3", "sqlalchemy.dialects.sqlite.pysqlite"),
    "postgresql": ("psycopg", "sqlalchemy.dialects.postgresql.psycopg"),
}


def _preload(database: str | None = None) -> list[str]:
    """The fork server's preload: the program's main module first, then ``_PRELOAD``. Each
    worker runs the main module again as ``__mp_main__`` (multiprocessing's rule), which
    costs the strongroom command's imports (~0.05 s CPU a worker) unless its fork server
    made them. A script, such as the ``strongroom`` console script, the fork server imports
    by path ("__main__"): the worker's run finds it done. For ``python -m``, runpy runs the
    module again in the worker, and warns when the module itself is imported already: the
    fork server imports what the module imported from its own package, not the module.
    ``database`` ("sqlite" or "postgresql") adds its driver (``_DRIVERS``)."""
    drivers = list(_DRIVERS.get(database or "", ()))
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    if spec is None:
        return ["__main__", _PRELOAD, *drivers]
    package = f"{spec.parent}."
    imported = sorted(n for n in sys.modules if n.startswith(package) and n != spec.name)
    return [*imported, _PRELOAD, *drivers]


def _context(database: str | None = None) -> multiprocessing.context.ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_preload(database))
    return context


def prestart_workers(database: str | None = None) -> None:
    """Start the fork server the workers will be forked from, now: it imports the server in
    parallel with the caller (``_PRELOAD``), and the driver of ``database`` ("sqlite" or
    "postgresql")."""
    from multiprocessing import forkserver

    _context(database)
    forkserver.ensure_running()


def server_class() -> type[Any]:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, but a SIGTERM or SIGINT that shut it down cleanly is a
        clean exit (status 0), not re-raised once shutdown is complete."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            handled = (signal.SIGINT, signal.SIGTERM)
            original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    return Server


def listening_socket(host: str, port: int, *, reuse_port: bool = True) -> socket.socket:
    """A TCP socket listening on (host, port), with SO_REUSEPORT unless ``reuse_port`` is
    False (a single server: a second one on the port then fails with "address in use")."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def check_free(host: str, port: int) -> int:
    """Bind (host, port) without SO_REUSEPORT to see it is free; return the port (0 picks
    one). Raises OSError (address in use) when another server has it."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
        bound: int = probe.getsockname()[1]
        return bound


def run_worker(sock: socket.socket, options: dict[str, Any], env: dict[str, str]) -> None:
    """A worker process: uvicorn on its own listening socket, the app from the settings in
    ``env`` (STRONGROOM_* variables; the fork server's own environment is older)."""
    os.environ.update(env)
    import uvicorn

    import strongroom.server.wiring  # noqa: F401  (before logging is set: alembic's import logs)

    # A forked worker starts with logging unset: without this, its records below WARNING
    # (the access log's among them) would go nowhere.
    configure_logging(options["log_level"], os.environ.get(f"{ENV_PREFIX}LOG_FORMAT", "text"))
    config = uvicorn.Config(APP_FACTORY, factory=True, **options)
    server = server_class()(config)
    server.run(sockets=[sock])
    sys.exit(0 if server.started else 1)


def supervise(
    host: str,
    port: int,
    workers: int,
    options: dict[str, Any],
    env: dict[str, str],
    *,
    https: bool = False,
) -> int:
    """Run ``workers`` worker processes on (host, port) until SIGTERM or SIGINT, with the
    settings ``env`` (STRONGROOM_* variables); ``https``: ``options`` carry uvicorn's ssl
    options."""
    sockets: list[socket.socket] = []
    try:
        port = check_free(host, port)
        sockets += [listening_socket(host, port) for _ in range(workers)]
    except OSError as exc:
        for sock in sockets:
            sock.close()
        print(f"strongroom: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        return 1
    context = _context()
    stop = threading.Event()

    def start(sock: socket.socket) -> tuple[BaseProcess, float]:
        process = context.Process(
            target=run_worker, args=(sock, options, env), name="strongroom-worker"
        )
        process.start()
        return process, time.monotonic()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes = [start(sock) for sock in sockets]
    print(
        f"strongroom: listening on {'https' if https else 'http'}://{host}:{port} with "
        f"{workers} worker processes",
        file=sys.stderr,
        flush=True,
    )
    status = 0
    try:
        while not stop.wait(_WATCH_INTERVAL):
            for i, (process, since) in enumerate(processes):
                if process.is_alive():
                    continue
                uptime = time.monotonic() - since
                if (process.exitcode or 0) > 0 and uptime < _FAILED_START:
                    print(
                        f"strongroom: a worker failed to start (status {process.exitcode})",
                        file=sys.stderr,
                        flush=True,
                    )
                    status = 1
                    stop.set()
                    break
                log.warning(
                    "worker %s exited with status %s; starting another",
                    process.pid,
                    process.exitcode,
                )
                processes[i] = start(sockets[i])
    finally:
        for process, _ in processes:
            process.terminate()  # SIGTERM: the worker finishes what is in flight
        for process, _ in processes:
            process.join(_STOP_TIMEOUT)
            if process.is_alive():
                process.kill()
                process.join()
        for sock in sockets:
            sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status
