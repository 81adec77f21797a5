"""A running job's heartbeat: a job whose worker died without a word goes back in the queue.

    with Heartbeat(project.store, job.id, job.claim):   # heartbeat_at, renewed every HEARTBEAT_SECONDS
        run_finetune(project, job, out_root)
    requeue_dead_jobs(project.store)         # running jobs silent for STALE_SECONDS: queued again

A job cut short by Ctrl-C or SIGTERM goes back in the queue by itself (``run_jobs``,
``BackgroundRetrainer.stop``); one whose process was killed (SIGKILL, the out-of-memory killer, a
power cut) cannot, and left "running" it would stop every later fine-tune (one runs at a time).
So the worker renews the job's ``heartbeat_at`` while it runs, and the next ``run_jobs`` or
``queue_finetune_if_due`` anywhere on the store queues a job whose heartbeat went stale (or is missing)
again, and notes it in the job's ``metrics["requeued"]``.

The beat comes from a thread of its own, not from the training loop: a job spends minutes outside the
loop too (the backbone's features, the pool's pre-labels), and a thread beats for as long as the process
lives. Times are the machines' UTC clocks, as for leases (:mod:`~headstart.labeling.leases`).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from headstart.labeling.models import ModelVersion, utcnow
from headstart.labeling.store import Store, iso

HEARTBEAT_SECONDS = 30.0
# Five minutes, ten beats: a beat may wait up to 30 s for SQLite's write lock (database.SQLITE_BUSY_MS)
# or for a PostgreSQL server that restarts, and the worker's clock may be a little off the clock of the
# machine that judges it; five minutes of silence is none of these. A dead job then waits at most that
# long for its restart, which is short beside the fine-tune itself.
STALE_SECONDS = 300.0


def beat(store: Store, job: int, claim: str | None = None) -> bool:
    """Record that running ``job`` is alive now; False when it is not running (it went back in the queue)
    or, given its ``claim`` (:mod:`~headstart.labeling.jobs`), another worker's run of it is."""
    query = update(ModelVersion).where(ModelVersion.id == job, ModelVersion.status == "running")
    if claim is not None:
        query = query.where(ModelVersion.claim == claim)
    with store.writing() as session:
        return session.execute(query.values(heartbeat_at=utcnow())).rowcount == 1


class Heartbeat:
    """A thread that beats for ``job`` (under ``claim``) every ``seconds`` while the ``with`` block runs."""

    def __init__(self, store: Store, job: int, claim: str | None = None, *, seconds: float = HEARTBEAT_SECONDS):
        self.store, self.job, self.claim, self.seconds = store, job, claim, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"headstart-heartbeat-v{job}", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                if not beat(self.store, self.job, self.claim):
                    return  # requeued, or another worker runs it: nothing of this run left to keep alive
            except Exception:  # noqa: BLE001 - a database away for a moment: the next beat tries again
                continue


def requeue_dead_jobs(store: Store, *, stale_seconds: float = STALE_SECONDS,
                      now: datetime | None = None) -> list[int]:
    """Put every running job whose heartbeat is older than ``stale_seconds`` (or missing) back in the
    queue, in one transaction; each gets a line in ``metrics["requeued"]`` saying when and why.
    Returns their ids."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=stale_seconds)
    query = select(ModelVersion).where(ModelVersion.status == "running", or_(
        ModelVersion.heartbeat_at.is_(None), ModelVersion.heartbeat_at < cutoff))
    with store.reading() as session:  # the usual answer, none, without taking SQLite's write lock
        if session.scalars(query.with_only_columns(ModelVersion.id)).first() is None:
            return []
    if store.dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)  # two workers looking at once requeue a job once
    with store.writing() as session:
        jobs = list(session.scalars(query))
        for job in jobs:
            note = (f"{iso(now)}: queued again: no heartbeat since {iso(job.heartbeat_at) or 'it started'}, "
                    f"over {stale_seconds:g} s ago, so its worker died")
            metrics = dict(job.metrics or {})
            job.metrics = {**metrics, "requeued": [*metrics.get("requeued", []), note]}
            job.status, job.heartbeat_at, job.claim = "queued", None, None
        return [job.id for job in jobs]
