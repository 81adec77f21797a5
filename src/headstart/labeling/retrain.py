"""Retraining as labels arrive: a probe in seconds, a fine-tune as a queued job; labeling never waits.

- :func:`retrain_probe` fits the loop's probe (:func:`fit_loop_probe`: a fixed prior, pool-scaled
  features) on the settled labels' cached features, stores it as a new model version with its
  out-of-fold accuracy and refreshes the pool's pre-labels, unless a finished fine-tune scored
  higher (:func:`better_finetune`): its pre-labels stay.
- :func:`due` says whether a retrain is due: the labels grew by a quarter since the newest probe
  (at least 10, at most ``retrain_every`` new ones).
- :func:`retrain_if_due` starts a retrain after a label from the command line, through a launcher
  (by default :func:`spawn_retrain`, a detached ``headstart label retrain --if-due``).
- :class:`BackgroundRetrainer` runs in a thread beside whatever takes labels: ``notify()`` after a
  label only sets an event; the thread retrains when due, and given a folder a second thread runs
  queued fine-tune jobs (:meth:`BackgroundRetrainer.run_once` is one look of both, in the caller's
  thread). The store is WAL-mode SQLite or PostgreSQL, so its reads never block label writes. Every
  probe retrain holds the store's retrain lock (:mod:`headstart.labeling.locks`).
- :func:`queue_finetune` adds a fine-tune job, by hand or, after a probe retrain, when
  :func:`finetune_due` (every ``finetune_every`` new labels, from that many on, one job at a time);
  :func:`run_jobs` (``headstart label retrain --worker`` or ``--watch``, ``headstart label serve``) runs
  queued jobs: the settled labels are split into train and validation and trained on in the default
  mode, with the unlabeled items as the pool (:func:`headstart.learn.trainer.train`), into a model
  folder whose path is kept with the version, and the pool's pre-labels are refreshed from it.
  (``next`` keeps ranking with the newest probe: its probabilities come from cached features in
  milliseconds.) A running job keeps a heartbeat; one whose worker was killed is queued again once
  it goes stale (:func:`requeue_dead`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from headstart.data import Dataset, assign_splits
from headstart.data.splits import default_val_share
from headstart.errors import LabelingError
from headstart.labeling.heartbeat import HEARTBEAT_SECONDS, STALE_SECONDS, Heartbeat, requeue_dead_jobs
from headstart.labeling.judging import ON_RANDOM_LABELS, judged, judged_accuracy, judging_splits
from headstart.learn.config import FinetuneConfig
from headstart.progress import progress_bar, say

if TYPE_CHECKING:
    from headstart.learn.head import LinearHead


def retrain_probe(project, *, seed: int = 0, refresh: bool = True) -> int:
    """Fit the loop's probe on the settled labels, store it as a model version with its out-of-fold
    accuracy on those labels (which errs low: chosen labels are harder than the pool's average item);
    returns the version id. The probe learns from the unlabeled pool too where that beats the labels
    alone out of fold (:mod:`headstart.labeling.pool_probe`; ``metrics["unlabeled"]`` says how it went)."""
    # scikit-learn loads here, not with the module: `headstart label add` imports it to ask due()
    from headstart.labeling.loop_probe import LOOP_C, pool_scaling
    from headstart.labeling.pool_probe import SETTING as POOL_SETTING, loop_head
    from headstart.labeling.zero_shot_prior import with_zero_shot_prior
    from headstart.learn.head import require_classes

    positions, y = project.resolved()
    require_classes(y, what="the probe", where=project.where, error=LabelingError,
                    fix="label more items (`headstart label next` picks diverse ones)")
    features = project.features()
    scaling = pool_scaling(features)
    # The pool too, where that beats the labels alone on the loop's out-of-fold folds; then the zero-shot
    # blend, judged on the out-of-fold probabilities of whichever head was kept.
    head, held_out, unlabeled = loop_head(features, positions, y, len(project.classes), scaling,
                                          method=project.settings.get(POOL_SETTING, "auto"), seed=seed)
    head, blend, held_out = with_zero_shot_prior(project, head, features[positions], held_out, y)
    accuracy, estimate = judged_accuracy(held_out, y, judged(project, positions))
    metrics = {"accuracy": accuracy, "accuracy_estimate": estimate,
               "C": LOOP_C, "n_labels": int(len(y)),
               "label_counts": np.bincount(y, minlength=len(project.classes)).tolist(),
               **({"zero_shot_prior": blend} if blend else {}), "unlabeled": unlabeled}
    serving = better_finetune(project, accuracy)
    if serving is not None:
        metrics["pre_labels"] = (f"kept from fine-tune v{serving.id} ({serving.metrics['accuracy']:.1%} on "
                                 f"its validation labels, this probe {accuracy:.1%} out of fold)")
    version = project.add_model_version("probe", status="done", n_labels=int(len(y)), metrics=metrics,
                                        weights=head.to_bytes())
    if refresh and serving is None:  # a fine-tune that finishes meanwhile and scores higher still wins
        refresh_predictions(project, head, version, unless_finetune_above=accuracy)
    queue_finetune_if_due(project)
    return version


def better_finetune(project, probe_accuracy: float):
    """The fine-tune whose pre-labels the pool holds, when it scored above ``probe_accuracy`` on its
    held-out labels; else None.

    Its pre-labels then stay: a probe retrain every 10-50 labels would otherwise replace a better model's
    within minutes of the job. As labels arrive the probe catches up and takes over, until the next
    fine-tune (a later probe that scores lower does not hand the pool back to it).

    Known bias: both estimates come from labels the loop chose because the probe was unsure of them,
    which penalizes the probe most (on Fashion-MNIST at 200 labels the fine-tune scored 72.7% on its
    validation split against the probe's 50-55%, and 80.0% on the test split against the probe's
    82.6%). A project with a judging share measures both on labels drawn at random instead
    (:mod:`headstart.labeling.judging`).
    """
    return project.store.serving_finetune(probe_accuracy)


def refresh_predictions(project, head: LinearHead, version: int, *,
                        unless_finetune_above: float | None = None) -> None:
    """Pre-label the whole pool with ``head``: predicted label, confidence and probabilities (:func:`predict_pool`)."""
    predict_pool(project, version, head, unless_finetune_above=unless_finetune_above)


PRELABEL_CHUNK = 20_000  # items a committed chunk: a rerun after a kill redoes at most this many


def predict_pool(project, version: int, head: LinearHead, *, chunk: int = PRELABEL_CHUNK,
                 unless_finetune_above: float | None = None) -> int:
    """Store model ``version``'s pre-labels of every item, a committed chunk at a time, with a progress bar.

    Resumable: items that already have a pre-label of this version are skipped, so a rerun after a
    kill (or an error) does only what is left. Other versions' pre-labels of an item go when its
    chunk is written, and any left over at the end. With ``unless_finetune_above`` (a probe's
    accuracy) it stops at the chunk where a finished fine-tune that scored higher holds the pool (it
    finished meanwhile, :func:`headstart.labeling.prelabel_rows.serving_finetune`). Returns how many items were
    predicted now.
    """
    todo = np.setdiff1d(np.arange(project.size), project.predicted(version))
    proba = project.pool_proba(head) if len(todo) else None  # kept: the next `label next` reads them
    with progress_bar("pre-labelling the pool", project.size) as advance:
        advance(project.size - len(todo))  # done by an earlier run
        for start in range(0, len(todo), chunk):
            positions = todo[start:start + chunk]
            if not project.store_prediction_chunk(version, positions, np.asarray(proba[positions]),
                                                  unless_finetune_above=unless_finetune_above):
                say(f"pre-labels of v{version} stopped: a better fine-tune's arrived meanwhile and stay")
                return int(start)
            advance(len(positions))
    project.drop_predictions(except_version=version, unless_finetune_above=unless_finetune_above)
    return int(len(todo))


FIRST_RETRAIN = 10  # labels before the first probe, and the smallest gap between two retrains
STALE_SHARE = 4  # a retrain is due once the labels have grown by a quarter (up to ``retrain_every`` new ones)


def retrain_due(have: int, at_last: int, every: int) -> bool:
    """Whether a probe fitted on ``at_last`` labels is due for a retrain now that there are ``have``.

    A retrain is due once the labels have grown by a quarter, at least :data:`FIRST_RETRAIN` and at most
    ``every`` new ones (by default at 10, 20, 30, 40, 50, 62, 77, 96, 120, 150, 187, 233, then every 50):
    early on each label moves the probe most and a probe on cached features fits in well under a
    second, while later each retrain rewrites the pool's pre-labels. Fashion-MNIST's loop
    (benchmarks/label_budget.py, 5 seeds, the probe without the pool), test % at 50 / 100 / 200 labels:
    a first retrain at 50 labels (batches 2-5 from the cold start's k-center, which picks outliers)
    61.2 / 72.4 / 81.8, below random labels; every 10 labels 74.0 / 79.4 / 82.9; the gap doubling up
    to 50, 74.5 / 78.4 / 81.4; this rule 74.0 / 78.7 / 82.5. On SST-2 (zero-shot start) the schedules
    differ by less than the seeds' spread. With the pool-trained probe (5 seeds, 2026-12-04), every 10
    labels up to 200 then a twentieth's growth gave 79.7 / 82.7 / 84.2 at 100 / 200 / 300 labels
    against this rule's 79.2 / 82.6 / 84.1, within the seeds' spread, for 1.75x the CPU (7.2 against
    4.1 minutes a loop to 500 labels): not taken.
    """
    if every <= 0:
        return False
    return have - at_last >= min(every, max(FIRST_RETRAIN, at_last // STALE_SHARE))


def due(project) -> bool:
    """Whether a retrain is due (:func:`retrain_due`) for the labels (person and import) that arrived."""
    latest = project.latest_model("probe")
    return retrain_due(project.count_labels(), latest.n_labels if latest else 0,
                       int(project.settings.get("retrain_every", 50)))


# SST-2, the loop's labels (benchmarks/label_budget.py): the default mode with the pool beat the loop's
# probe from 100 labels on (77.5 against 75.8%, 81.5 against 77.6% at 200, 5 seeds), not below
# (71.2 against 74.7% at 20); on Fashion-MNIST it was within the seeds' spread of the probe, so a job costs
# minutes of a worker's CPU but not accuracy (auto keeps its probe when tuning does not win).
FINETUNE_EVERY = 100


def finetune_due(have: int, last: int | None, every: int) -> bool:
    """Whether a fine-tune is due with ``have`` settled labels, the newest one (queued, running or done)
    having been queued at ``last`` labels (None: none yet): from ``every`` labels on, each time
    ``every`` more arrived (0: never; a failed job does not count, so the next retrain queues again)."""
    return every > 0 and have >= every and (last is None or have - last >= every)


def queue_finetune_if_due(project) -> int | None:
    """Queue a fine-tune when :func:`finetune_due` and none is waiting or running; returns its id or None.
    A running job whose worker died (:func:`requeue_dead`) counts as waiting: it is queued again."""
    requeue_dead(project)
    jobs = [v for v in project.model_versions("finetune") if v.status != "failed"]
    if any(v.status in ("queued", "running") for v in jobs):
        return None  # one at a time: the worker takes the newest labels when it gets to it
    have = project.count_labels()
    if not finetune_due(have, jobs[-1].n_labels if jobs else None,
                        int(project.settings.get("finetune_every", FINETUNE_EVERY))):
        return None
    return queue_finetune(project)


def queue_finetune(project, **config) -> int:
    """Queue a fine-tune of the project's backbone on the settled labels; returns the version id.
    ``config``: :class:`headstart.FinetuneConfig` fields (epochs, lr, strategy, ...)."""
    FinetuneConfig(**config)  # a wrong field fails now, not in the worker
    return project.add_model_version("finetune", status="queued", n_labels=project.count_labels(),
                                     metrics={"config": config})


def settled_and_pool(project) -> tuple[np.ndarray, Dataset, Dataset]:
    """From one reading of the labels: (the positions of the items with a settled label, those items
    as a Dataset with their labels (people's and imported; not the model's), the other items as an
    unlabeled Dataset: the pool a retrain learns from). One reading, so that a label arriving while a
    job starts cannot leave the three disagreeing."""
    positions, y = project.resolved()
    table = project.table()

    def dataset(rows, labels=None):
        return Dataset(project.modality, [row.content for row in rows], [row.hash for row in rows],
                       labels=labels, origins=[f"item {row.external_id}" for row in rows], source=project.where)

    settled = dataset([table[i] for i in positions], [project.classes[i] for i in y])
    pool = dataset([table[i] for i in np.setdiff1d(np.arange(len(table)), positions)])
    return positions, settled, pool


def run_finetune(project, version, out_root: str | Path) -> None:
    """Run one fine-tune job: split the settled labels into train and validation (as ``headstart fit``
    with a test file: no label is spent on a test split, the probe's out-of-fold estimate is the
    project's), train the project's backbone in the default mode (``auto``: the fine-tune unless the
    probe beat it on validation) on the labels and the unlabeled items (as ``headstart fit
    --unlabeled``, with the project's ``pool_training`` setting), save the model folder, record its
    metrics on validation (held out while choosing, before the refit on every label) and refresh the
    pool's pre-labels."""
    # Imported here: they load torch, which the labeling server needs only when a job runs.
    from headstart.backbones import create_backbone
    from headstart.evaluate import classification_metrics
    from headstart.labeling.pool_probe import SETTING as POOL_SETTING
    from headstart.labeling.zero_shot_prior import DESCRIBE_SETTING
    from headstart.learn.trainer import train
    from headstart.model import Model, publish_folder

    attempt = None
    try:
        positions, settled, pool = settled_and_pool(project)
        # The labels drawn at random for judging, where there are enough: an unbiased validation split.
        chosen = judged(project, positions)
        splits = None if chosen is None else judging_splits(chosen, settled.labels)
        if splits is not None:
            dataset = replace(settled, splits=splits)
        else:
            val_share = default_val_share(len(settled))
            dataset = assign_splits(settled, ratios=(1 - val_share, val_share, 0.0), seed=0)
        train_set, val_set = dataset.split("train"), dataset.split("val")
        classes, options = train_set.classes, project.backbone_options
        backbone = create_backbone(project.backbone, **options)
        config = FinetuneConfig(**(version.metrics or {}).get("config", {}))
        result = train(backbone, train_set, val_set, classes, mode="auto", config=config, keep_val_proba=True,
                       pool=pool if len(pool) else None, pool_method=project.settings.get(POOL_SETTING, "auto"),
                       describe=project.settings.get(DESCRIBE_SETTING))  # the zero-shot start's, for the prior
        model = Model(backbone, result.head, classes, backbone_options=options, finetuned=result.finetuned)
        metrics = {**classification_metrics(val_set.label_ids(classes), result.val_proba, classes),
                   "accuracy_estimate": f"validation split ({len(val_set)} labels"
                                        f"{' ' + ON_RANDOM_LABELS if splits is not None else ''}, held out while choosing)"}
        model.info = {"config": result.config, "metrics": metrics, "history": result.history,
                      "manifest": {"data_hash": dataset.content_hash(), "data": dataset.source, "seed": 0}}
        # Written beside its place and moved there only while this run still holds the job (labeling.jobs):
        # a run thought dead and restarted elsewhere writes the same folder.
        folder = Path(out_root) / f"model-v{version.id}"
        attempt = model.save(folder.with_name(f".{folder.name}.{version.claim}"))
        won = project.finish_job(
            version, "done", path=str(folder), n_labels=len(settled),
            publish=lambda: publish_folder(attempt, folder),
            predictions=(model.classes, model.predict_proba([row.content for row in project.table()])),
            metrics={**(version.metrics or {}), "mode": result.config["mode"],
                     "accuracy_estimate": metrics["accuracy_estimate"],
                     **{k: v for k, v in metrics.items() if isinstance(v, (int, float))}})
        if not won:
            say(f"job v{version.id}: another run holds it now (this one was thought dead or stopped); "
                "its result is dropped")
    except Exception as error:  # noqa: BLE001 - a failed job is recorded, the worker goes on
        project.finish_job(version, "failed", error=f"{error}\n{traceback.format_exc()}")
    finally:
        if attempt is not None:
            shutil.rmtree(attempt, ignore_errors=True)  # gone unless published


def run_jobs(project, out_root: str | Path, *, kind: str | None = None, current: dict | None = None,
             stop: threading.Event | None = None) -> int:
    """Run queued jobs until none is left (or ``stop`` is set); returns how many ran.

    A job cut short (Ctrl-C, the process exiting) goes back in the queue: left "running", it would
    stop every later fine-tune, as one runs at a time. A job runs with a heartbeat, and one whose
    worker was killed is queued again first (:func:`requeue_dead`). ``current["job"]`` holds the
    running job (its row, with the claim).
    """
    requeue_dead(project)
    ran, current = 0, {} if current is None else current
    while not (stop and stop.is_set()) and (job := project.claim_job(kind)) is not None:
        say(f"running {job.kind} job v{job.id}")
        current["job"] = job
        try:
            if job.kind == "finetune":
                with Heartbeat(project.store, job.id, job.claim, seconds=HEARTBEAT_SECONDS):
                    run_finetune(project, job, out_root)
            else:
                project.finish_job(job, "failed", error=f"unknown job kind {job.kind}")
        except BaseException:  # noqa: BLE001 - run_finetune records its own errors: this is an interruption
            project.give_back_job(job)
            raise
        finally:
            current.pop("job", None)
        ran += 1
    return ran


JOB_NICENESS = 10  # added to the server's: requests and probe retrains go first, a fine-tune takes the rest


def lower_thread_priority(niceness: int = JOB_NICENESS) -> bool:
    """Lower the calling thread's CPU priority (Linux; elsewhere nothing); returns whether it did.

    A fine-tune in the labeling server's jobs thread would otherwise take the cores from the
    requests beside it. On Linux a thread's nice value is its own, and the threads it starts
    (PyTorch's intra-op team) inherit it.
    """
    if not sys.platform.startswith("linux"):
        return False
    thread = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + niceness))
    except OSError:  # not allowed here: the job runs at the server's priority
        return False
    return True


def requeue_dead(project) -> list[int]:
    """Queue again the running jobs whose heartbeat went stale (:mod:`headstart.labeling.heartbeat`: their
    worker was killed), saying so; returns their ids."""
    requeued = requeue_dead_jobs(project.store, stale_seconds=STALE_SECONDS)
    for job in requeued:
        say(f"job v{job} queued again: its worker sent no heartbeat for over {STALE_SECONDS:g} s (it died)")
    return requeued


def spawn_retrain(url: str) -> None:
    """Start ``headstart label retrain --if-due`` on the store at ``url`` in a detached process: the
    person who labeled never waits for it. The URL goes in the environment, not on the command line,
    where other users' ``ps`` would show a password in it."""
    subprocess.Popen([sys.executable, "-m", "headstart.cli", "--quiet", "label", "retrain", "--if-due"],
                     env={**os.environ, "HEADSTART_LABEL_DB": url}, stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def retrain_if_due(project, *, launch: Callable[[str], None] = spawn_retrain) -> bool:
    """Start a retrain of ``project`` when :func:`due`, with ``launch(store URL)`` (by default a
    detached process, see :func:`spawn_retrain`); returns whether one was started."""
    if not due(project):
        return False
    launch(project.url)
    return True


class BackgroundRetrainer:
    """A thread that retrains the probe when :func:`due`; with ``out_root``, a second one that runs queued
    jobs into that folder. ``notify()`` is instant.

        retrainer = BackgroundRetrainer(project, out_root="runs/labeling").start()
        project.add(item, label); retrainer.notify()
        ...
        retrainer.stop()

    Jobs have a thread of their own: a fine-tune takes minutes to hours, and the probe keeps up with the
    labels meanwhile, as it does beside a separate worker. It takes the store's retrain lock
    (:mod:`headstart.labeling.locks`) around each probe retrain, so it never trains one beside
    `headstart label retrain` or another server on the same store.
    """

    def __init__(self, project, *, out_root: str | Path | None = None, poll_seconds: float = 5.0, seed: int = 0):
        self.project = project
        self.out_root = Path(out_root) if out_root else None
        self.poll_seconds = poll_seconds
        self.seed = seed
        self.versions: list[int] = []
        self.errors: list[str] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._current: dict = {}  # the job run_jobs is running, if any
        self._jobs_thread = (threading.Thread(target=self._run_jobs, name="headstart-jobs", daemon=True)
                             if self.out_root is not None else None)
        self._threads = [threading.Thread(target=self._run, name="headstart-retrainer", daemon=True),
                         *([self._jobs_thread] if self._jobs_thread else [])]

    def start(self) -> "BackgroundRetrainer":
        for thread in self._threads:
            thread.start()
        return self

    def notify(self) -> None:
        self._idle.clear()
        self._wake.set()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until the thread has looked at the store since the last notify (for scripts)."""
        return self._idle.wait(timeout)

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop the threads, waiting up to ``timeout`` s in all; a job still running then goes back in
        the queue (its thread dies with the process, and the next worker starts the job over)."""
        self._stop.set()
        self._wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        job = self._current.get("job")
        if self._jobs_thread is not None and self._jobs_thread.is_alive() and job is not None:
            self.project.give_back_job(job)  # if the thread finishes it after all, its result is dropped

    def run_once(self) -> int | None:
        """One look at the store, in the caller's thread: retrain when due (unless another retrain
        holds the lock; the next look retries), then, with ``out_root``, run queued jobs. Returns the new
        version, if any. Errors are kept in ``errors``: e.g. one class only so far is retried after more
        labels."""
        version = self._guarded(self._retrain)
        if self.out_root is not None:
            self._guarded(self._jobs)
        return version

    def _retrain(self) -> int | None:
        if due(self.project):
            with self.project.retrain_lock(blocking=False) as held:
                if held and due(self.project):  # due again: the holder before us may have trained
                    version = retrain_probe(self.project, seed=self.seed)
                    self.versions.append(version)
                    return version
        return None

    def _jobs(self) -> None:
        run_jobs(self.project, self.out_root, current=self._current, stop=self._stop)

    def _guarded(self, look: Callable[[], int | None]) -> int | None:
        try:
            return look()
        except LabelingError as error:
            self.errors.append(str(error))
        except Exception:  # noqa: BLE001 - the thread must not die silently
            self.errors.append(traceback.format_exc())
        return None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            self._guarded(self._retrain)
            self._idle.set()

    def _run_jobs(self) -> None:
        lower_thread_priority()
        while not self._stop.is_set():  # at once, then every poll_seconds (a probe retrain may queue one)
            self._guarded(self._jobs)
            self._stop.wait(self.poll_seconds)
