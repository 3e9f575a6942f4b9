"""Change notifications between nodes on PostgreSQL: ``LISTEN``/``NOTIFY``.

Every transaction that records a change (``SqlChanges.record``) also sends a notification on
``CHANNEL``; PostgreSQL delivers it to every listening session when, and only when, the
transaction commits. A ChangeListener holds one connection of its own that listens, in a
thread of its own, and calls its callback for each notification (the process then reads
the change feed at once instead of at its next poll). It reconnects after a failure; the
poll of the change feed goes on meanwhile, so a lost notification costs at most one poll
interval. SQLite has no notifications: processes sharing a SQLite database poll.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

log = logging.getLogger(__name__)

CHANNEL = "strongroom_changes"
NOTIFY = sa.text(f"NOTIFY {CHANNEL}")  # one per transaction: PostgreSQL folds the same ones
RETRY_SECONDS = 1.0  # between attempts to listen again after the connection failed
WAKE_SECONDS = 0.5  # how often the listening thread looks whether it should stop


class ChangeListener:
    """Listens on CHANNEL with a connection of its own and calls ``on_change`` (from its own
    thread) for every notification, from ``start`` to ``stop``."""

    def __init__(
        self,
        url: sa.URL,
        on_change: Callable[[], None],
        connect_args: Mapping[str, Any] | None = None,
    ) -> None:
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._connect_args = dict(connect_args or {})  # the store's timeouts (store.py)
        self._on_change = on_change
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="change-listener", daemon=True)
        self.listening = threading.Event()  # set while LISTEN is in effect (for tests)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=WAKE_SECONDS * 4)

    def _run(self) -> None:
        # Imported here: only PostgreSQL listens, and a process on SQLite is about 9 MB
        # smaller without psycopg (bench/memory_bench.py).
        import psycopg

        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, **self._connect_args) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    while not self._stopping.is_set():
                        for _ in conn.notifies(timeout=WAKE_SECONDS):
                            self._on_change()
            except psycopg.Error as e:
                log.warning("listening for changes failed (%s); polling meanwhile", e)
            except Exception:
                log.exception("the change listener failed; polling meanwhile")
            self.listening.clear()
            self._stopping.wait(RETRY_SECONDS)
