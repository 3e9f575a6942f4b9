"""The process's background work beside the requests: the change feed (other processes'
and nodes' changes evict cached keys and credentials), the completion of multi-Region
replication, the periodic jobs (deletion, rotation, import expiry, session and
change-feed pruning) and the flush of the key uses noted for GetKeyLastUsage (also when the
process stops). Every job runs in the thread pool, each in its own try: one that
fails is logged and does not stop the others."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from strongroom.audit.signing import rewrap_signing_key
from strongroom.server.metrics import Metrics
from strongroom.server.wiring import Runtime
from strongroom.services.core import Core
from strongroom.services.deletion import delete_due_keys
from strongroom.services.faults import FAULTS_CHANGE
from strongroom.services.imports import expire_due_materials
from strongroom.services.key_usage import write_uses
from strongroom.services.multiregion import complete_replication
from strongroom.services.quotas import CHANGE_NAME as QUOTAS_CHANGED
from strongroom.services.rotation import rotate_due_keys
from strongroom.services.sessions import prune_sessions
from strongroom.storage.ports import ChangeListening

log = logging.getLogger("strongroom.server")

CHANGE_RETENTION = timedelta(hours=1)

Job = Callable[[Core], object]


def prune_changes(core: Core) -> None:
    """Forget the change feed's entries older than CHANGE_RETENTION: every process has
    polled them long since."""
    with core.store.transaction() as tx:
        tx.changes.prune(datetime.now(UTC) - CHANGE_RETENTION)


PERIODIC: Sequence[Job] = (
    delete_due_keys,
    rotate_due_keys,
    expire_due_materials,
    prune_sessions,
    prune_changes,
)
"""The jobs run every ``job_interval_seconds``, in this order."""


class Jobs:
    """Runs the background work of one process from ``start`` to ``stop``."""

    def __init__(
        self,
        runtime: Runtime,
        pool: ThreadPoolExecutor,
        periodic: Sequence[Job] = PERIODIC,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self.rt = runtime
        self._pool = pool
        self._metrics = metrics
        self._periodic = periodic
        self._tasks: list[asyncio.Task[None]] = []
        self._change_seq = 0
        self._changed = asyncio.Event()  # a change was notified (PostgreSQL)
        self._listening: ChangeListening | None = None
        self._next_read: asyncio.Future[None] | None = None  # catch_up's waiting read
        self._reading = False
        self._poll_lock = threading.Lock()
        # The root key the audit signing key was last wrapped under (at start: load_signer).
        follower = runtime.root_keys
        self._active_root_key = None if follower is None else follower.ring.active

    def start(self) -> None:
        """Start the schedules on the running loop; changes made before now are not news.
        On PostgreSQL the change feed is also read as soon as another process notifies a
        change (``storage.sql.notify``), and the poll is the fallback."""
        self._change_seq = self.rt.core.store.latest_change()
        self.rt.faults.load(self.rt.core.store)  # after the seq: a later change reloads them
        s = self.rt.settings
        loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        changed = self._changed

        def notified() -> None:  # on the listener's thread
            loop.call_soon_threadsafe(changed.set)

        self._listening = self.rt.core.store.listen_for_changes(notified)
        self._tasks = [
            asyncio.create_task(self._follow_changes(s.change_poll_seconds)),
            asyncio.create_task(self._every(s.job_interval_seconds, self.run_periodic)),
            # AWS replicates a multi-Region key "after a few seconds": as often as changes.
            asyncio.create_task(self._every(s.change_poll_seconds, self.complete_replication)),
            asyncio.create_task(self._flush_usage_every(s.usage_flush_seconds)),
        ]
        if self._metrics is not None and s.workers > 1:  # for the worker that is scraped
            self._tasks.append(asyncio.create_task(self._every(1.0, self.write_metrics)))
        if self.rt.root_keys is not None:
            # A migration or rotation of the root key: as often as changes.
            self._tasks.append(
                asyncio.create_task(self._every(s.change_poll_seconds, self.follow_root_keys))
            )

    async def stop(self) -> None:
        """Cancel the schedules, wait until none runs, then write the key uses noted since
        the last flush."""
        if self._listening is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, self._listening.stop)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self.flush_usage()
        except Exception:
            log.exception("writing the key uses failed")

    async def flush_usage(self) -> None:
        """Write the key uses noted since the last flush. They are taken on the loop, where
        requests note them, so none is noted into a batch being written; a batch that fails
        to be written is taken again with the next."""
        uses = self.rt.core.key_usage.take()
        if uses:
            await asyncio.get_running_loop().run_in_executor(
                self._pool, write_uses, self.rt.core, uses
            )
            self.rt.core.key_usage.written(uses)

    async def _flush_usage_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await self.flush_usage()
            except Exception:
                log.exception("scheduled job flush_usage failed")

    async def catch_up(self) -> None:
        """Return once the change feed has been read after this call began (strict
        consistency: before every request). Calls that arrive while a read runs share the
        next one, so there is at most one read in flight and one waiting, whatever the
        load."""
        loop = asyncio.get_running_loop()
        if self._next_read is None:
            self._next_read = loop.create_future()
        waiting = self._next_read
        if not self._reading:
            self._start_read(loop)
        await asyncio.shield(waiting)

    def _start_read(self, loop: asyncio.AbstractEventLoop) -> None:
        done, self._next_read = self._next_read, None
        assert done is not None
        self._reading = True

        def finished(read: asyncio.Future[None]) -> None:
            self._reading = False
            error = read.exception()
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)
            if self._next_read is not None:
                self._start_read(loop)

        loop.run_in_executor(self._pool, self.poll_changes).add_done_callback(finished)

    async def _follow_changes(self, seconds: float) -> None:
        """Read the change feed every ``seconds``, and at once when notified of a change
        (notifications that arrive while it is read are served by one more read)."""
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), seconds)
            self._changed.clear()
            try:
                await loop.run_in_executor(self._pool, self.poll_changes)
            except Exception:
                log.exception("scheduled job poll_changes failed")

    async def _every(self, seconds: float, job: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(seconds)
            try:
                await loop.run_in_executor(self._pool, job)
            except Exception:
                log.exception("scheduled job %s failed", job.__name__)

    def poll_changes(self) -> None:
        """Evict what changed since the last poll from the key cache and, for a principal
        whose identity policies changed, from the credential cache; reload the injected
        faults and the quota values when they changed."""
        with self._poll_lock:  # the schedule's read and catch_up's may overlap
            seq, arns = self.rt.core.store.changes_since(self._change_seq)
            if FAULTS_CHANGE in arns:  # before the seq moves on: a failed reload is retried
                self.rt.faults.load(self.rt.core.store)
            if QUOTAS_CHANGED in arns:  # strongroom admin quota set/reset: the new values
                self.rt.core.quota_values.reload(self.rt.core.store)
            self._change_seq = max(seq, self._change_seq)
        for arn in arns:
            self.rt.core.cache.invalidate(arn)
            self.rt.core.store_tokens.invalidate(arn)  # a custom key store's connection
            self.rt.core.xks_clients.invalidate(arn)  # an external key store's proxy client
            if arn.startswith("arn:aws:iam::"):  # a principal's identity policies changed
                self.rt.credentials.forget_principal(arn)

    def write_metrics(self) -> None:
        """Write this worker's counts for the one that answers the next scrape."""
        if self._metrics is not None:
            self._metrics.note_cache(self.rt.core.cache.hits, self.rt.core.cache.misses)
            self._metrics.write()

    def follow_root_keys(self) -> None:
        """Open the root keys a migration or rotation registered, drop the retired ones;
        when another key became active, wrap the audit signing key under it (before the
        old key is retired and, in a token, destroyed)."""
        follower = self.rt.root_keys
        if follower is None:
            return
        follower.refresh()
        active = follower.ring.active
        if active is not self._active_root_key:
            signer = self.rt.audit.signer
            if signer is not None:
                rewrap_signing_key(self.rt.settings.audit_path, follower.ring, signer)
            self._active_root_key = active

    def complete_replication(self) -> None:
        """Finish the multi-Region replicas still being created (one process at a time)."""
        with self.rt.core.store.exclusive("replication") as mine:
            if mine:
                complete_replication(self.rt.core)

    def run_periodic(self) -> None:
        """Run every periodic job once, in order, unless another process sharing the
        database runs them now (the jobs are idempotent: the next round does what this one
        skipped); a job that fails is logged and the next one runs all the same."""
        with self.rt.core.store.exclusive("periodic") as mine:
            if not mine:
                return
            for job in self._periodic:
                try:
                    job(self.rt.core)
                except Exception:
                    log.exception("scheduled job %s failed", job.__name__)
