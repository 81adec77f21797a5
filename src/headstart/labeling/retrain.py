"""Retraining as labels arrive: a probe in seconds, a fine-tune as a queued job; labeling never waits.

- :func:`retrain_probe` fits the probe (``headstart.learn.probe.fit_probe``) on the settled labels'
  cached features, stores it as a new model version with its cross-validated accuracy and
  refreshes the pool's pre-labels.
- :func:`due` says whether ``retrain_every`` new labels have arrived since the newest probe.
- :class:`BackgroundRetrainer` runs in a thread beside whatever takes labels: ``notify()`` after a
  label only sets an event; the thread retrains when due and runs queued fine-tune jobs. The store
  is WAL-mode SQLite or PostgreSQL, so its reads never block label writes.
- :func:`queue_finetune` adds a fine-tune job; :func:`run_jobs` (``headstart label retrain --worker``)
  runs queued jobs: the labels are exported and trained with ``headstart.fit(mode="finetune")``
  into a model folder whose path is kept with the version, and the pool's pre-labels are
  refreshed from it. (``next`` keeps ranking with the newest probe: its probabilities come from
  cached features in milliseconds.)
"""

from __future__ import annotations

import tempfile
import threading
import traceback
from pathlib import Path

import numpy as np
from safetensors.numpy import load as load_tensors, save as save_tensors
from sklearn.model_selection import train_test_split

from headstart.errors import LabelingError
from headstart.learn.probe import SMALL_DATA, LinearHead, _fit, fit_probe
from headstart.progress import say


def head_bytes(head: LinearHead) -> bytes:
    return save_tensors({"weight": np.ascontiguousarray(head.weight), "bias": np.ascontiguousarray(head.bias)})


def load_head(data: bytes) -> LinearHead:
    tensors = load_tensors(data)
    return LinearHead(tensors["weight"], tensors["bias"])


def fit_labeled_probe(x: np.ndarray, y: np.ndarray, n_classes: int, seed: int = 0,
                      one_standard_error: bool = True) -> tuple[LinearHead, dict]:
    """The probe on every settled label: C by cross-validation below SMALL_DATA items, by a
    stratified 20% hold-out above; a class with a single label gets a fixed C=1 (nothing to validate).

    C is then the *strongest* regularization whose held-out accuracy lies within one standard error
    of the best (the one-standard-error rule). Labels chosen by active learning crowd the class
    boundary, and cross-validation on them prefers a weakly regularized probe that generalizes worse:
    on SST-2 with minilm-l6, 510 margin-sampled labels, plain cross-validation chose C=10 (test
    accuracy 0.773), the rule C=0.03 (0.787); on 510 random labels both chose C=0.001.
    ``one_standard_error=False`` keeps plain cross-validation's choice (better calibrated
    probabilities, for label issues and thresholds).
    """
    counts = np.bincount(y, minlength=n_classes)[np.unique(y)]
    if counts.min() < 2:
        return _fit(x, y, n_classes, 1.0, seed), {"C": 1.0, "selection": "fixed (a class has one label)",
                                                  "val_accuracy": None, "val_loss": None}
    if len(y) < SMALL_DATA:
        head, info = fit_probe(x, y, x[:0], y[:0], n_classes, seed=seed)
        n_scored = len(y)
    else:
        train, val = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=seed)
        head, info = fit_probe(x[train], y[train], x[val], y[val], n_classes, seed=seed)
        n_scored = len(val)
    best = max(row["val_accuracy"] for row in info["grid"])
    margin = float(np.sqrt(best * (1 - best) / max(1, n_scored)))
    chosen = min((row for row in info["grid"] if row["val_accuracy"] >= best - margin), key=lambda row: row["C"])
    if one_standard_error and chosen["C"] != info["C"]:
        head = _fit(x, y, n_classes, chosen["C"], seed)
        info = {**info, "C": chosen["C"], "val_accuracy": chosen["val_accuracy"], "val_loss": chosen["val_loss"],
                "selection": info["selection"] + ", one-standard-error rule"}
    return head, info


def softmax_proba(head: LinearHead, features: np.ndarray) -> np.ndarray:
    logits = head.logits(features)
    logits = logits - logits.max(axis=1, keepdims=True)
    proba = np.exp(logits)
    return proba / proba.sum(axis=1, keepdims=True)


def retrain_probe(project, *, seed: int = 0, refresh: bool = True) -> int:
    """Fit the probe on the settled labels, store it as a model version; returns the version id."""
    positions, y = project.resolved()
    if len(np.unique(y)) < 2:
        raise LabelingError(f"the probe needs labels of at least two classes; there are {len(y)} labels of "
                            f"{len(np.unique(y))} class(es)", where=project.store.where,
                            fix="label more items (`headstart label next` picks diverse ones)")
    features = project.features()
    head, info = fit_labeled_probe(features[positions], y, len(project.classes), seed)
    metrics = {"accuracy": info.get("val_accuracy"), "accuracy_estimate": info.get("selection"), "C": info.get("C"),
               "n_labels": int(len(y)), "label_counts": np.bincount(y, minlength=len(project.classes)).tolist()}
    version = project.store.add_model_version("probe", status="done", n_labels=int(len(y)), metrics=metrics,
                                              weights=head_bytes(head))
    if refresh:
        refresh_predictions(project, head, version)
    return version


def refresh_predictions(project, head: LinearHead, version: int) -> None:
    """Pre-label the whole pool with ``head``: predicted label, confidence and probabilities."""
    proba = softmax_proba(head, project.features())
    winners = proba.argmax(axis=1)
    project.store.replace_predictions(version, [row[0] for row in project.table()],
                                      [project.classes[i] for i in winners], proba.max(axis=1), proba)


def due(project) -> bool:
    """Whether ``retrain_every`` labels (person and import) arrived since the newest probe."""
    every = int(project.settings.get("retrain_every", 50))
    latest = project.store.latest_model("probe")
    have = project.store.count_labels()
    return have - (latest.n_labels if latest else 0) >= every if every > 0 else False


def queue_finetune(project, **config) -> int:
    """Queue a fine-tune of the project's backbone on the settled labels; returns the version id.
    ``config``: :class:`headstart.FinetuneConfig` fields (epochs, lr, strategy, ...)."""
    import headstart

    headstart.FinetuneConfig(**config)  # a wrong field fails now, not in the worker
    return project.store.add_model_version("finetune", status="queued", metrics={"config": config})


def run_finetune(project, version, out_root: str | Path) -> None:
    """Run one fine-tune job: export the labels, ``headstart.fit(mode="finetune")``, record the result.
    The from-scratch baseline is skipped: this model is for pre-labels, not a report."""
    import headstart
    from headstart.labeling.exchange import export_labels

    store = project.store
    try:
        with tempfile.TemporaryDirectory(prefix="headstart-finetune-") as tmp:
            data = export_labels(project, Path(tmp) / "labels.csv", include_model=False)
            folder = Path(out_root) / f"model-v{version.id}"
            config = headstart.FinetuneConfig(**(version.metrics or {}).get("config", {}))
            model = headstart.fit(data, backbone=store.project.backbone, mode="finetune", out=folder,
                                  finetune_config=config, baseline=False)
        metrics = {k: v for k, v in model.metrics.items() if isinstance(v, (int, float))}
        table = project.table()
        proba = model.predict_proba([row[2] for row in table])  # pre-labels from the fine-tuned model
        store.replace_predictions(version.id, [row[0] for row in table],
                                  [model.classes[i] for i in proba.argmax(axis=1)], proba.max(axis=1), proba)
        store.update_model_version(version.id, status="done", path=str(folder), n_labels=store.count_labels(),
                                   metrics={**(version.metrics or {}), **metrics})
    except Exception as error:  # noqa: BLE001 - a failed job is recorded, the worker goes on
        store.update_model_version(version.id, status="failed", error=f"{error}\n{traceback.format_exc()}")


def run_jobs(project, out_root: str | Path, *, kind: str | None = None) -> int:
    """Run queued jobs until none is left; returns how many ran."""
    ran = 0
    while (job := project.store.claim_job(kind)) is not None:
        say(f"running {job.kind} job v{job.id}")
        if job.kind == "finetune":
            run_finetune(project, job, out_root)
        else:
            project.store.update_model_version(job.id, status="failed", error=f"unknown job kind {job.kind}")
        ran += 1
    return ran


class BackgroundRetrainer:
    """A thread that retrains the probe when :func:`due` and runs queued jobs; ``notify()`` is instant.

        retrainer = BackgroundRetrainer(project).start()
        project.add(item, label); retrainer.notify()
        ...
        retrainer.stop()
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
        self._thread = threading.Thread(target=self._run, name="headstart-retrainer", daemon=True)

    def start(self) -> "BackgroundRetrainer":
        self._thread.start()
        return self

    def notify(self) -> None:
        self._idle.clear()
        self._wake.set()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until the thread has looked at the store since the last notify (for tests and scripts)."""
        return self._idle.wait(timeout)

    def stop(self, timeout: float | None = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            try:
                if due(self.project):
                    self.versions.append(retrain_probe(self.project, seed=self.seed))
                if self.out_root is not None:
                    run_jobs(self.project, self.out_root)
            except LabelingError as error:  # e.g. one class only so far: try again after more labels
                self.errors.append(str(error))
            except Exception:  # noqa: BLE001 - the thread must not die silently
                self.errors.append(traceback.format_exc())
            self._idle.set()
